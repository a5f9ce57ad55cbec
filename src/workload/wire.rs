//! What travels on the wire: the element type of every communication kind (one table,
//! [`CommSpec::dtype`], indexed by [`CommKind`]) and gradient compression (one table of
//! methods, [`METHODS`]): the bytes each method puts on the wire, the collective it runs,
//! the GPU work it adds, the memory it keeps and the phases of a run it compresses.
//!
//! Volumes are those of `../shared/validation/round2/schedules-cp-compression.md`:
//!
//! * **1-bit Adam / 1-bit LAMB** (`onebit-adam-volume`, `onebit-lamb-parameters`): an
//!   uncompressed warm-up (`warmup_fraction` of the steps), then the momentum all-reduced
//!   as 1 bit per element with error compensation, 16x less than FP16. The exchange runs in
//!   the optimizer step (after the backward, not overlapped with it), and needs ZeRO-0.
//! * **0/1 Adam**: 1-bit Adam's compressed exchange; its adaptive variance freeze needs no
//!   full-precision warm-up (default 0) and `local_steps` > 1 skips the exchange on all but
//!   one step in `local_steps` (the steps between synchronise nothing).
//! * **PowerSGD** (`powersgd-volume`): every gradient matrix `n x m` with
//!   `(n + m) r * 2 < n m` goes as two all-reduces one after the other, `P` (`n r`) and `Q`
//!   (`m r`); 1-D tensors and matrices too small to gain go uncompressed with `P`.
//!   Compression reads the gradient twice and keeps an error-feedback copy.
//! * **Top-k with error feedback** (`dgc-scheme`, DGC): each rank sends `topk_fraction` of
//!   its gradient elements as values and 4-byte indices by all-gather, so the bytes grow
//!   with the group.
//! * **ZeRO++** (`zeropp-volume`, ZeRO-3 only): qwZ gathers the weights as INT8 (1 byte),
//!   hpZ runs the backward gather over a secondary copy sharded inside the node (cross-node
//!   bytes 0, one more weight shard in memory), qgZ reduces the gradients as INT4
//!   (0.5 byte): 3M -> 0.75M cross-node bytes with all three.
//!
//! The extra GPU work is memory-bound passes over the gradient (bytes per element below),
//! timed by the kernel model; the convergence penalty (`extra_steps_fraction`) lengthens
//! the run to a target loss (`training::outcome`). Defaults of the penalty are 0: the
//! methods' papers report the baseline's convergence; set it from your own runs.

use super::op::CommKind;
use crate::model::TransformerSpec;
use crate::network::collective::CollectiveKind;
use crate::parallel::ParallelPlan;
use serde::{Deserialize, Serialize};

/// Element type on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireDtype {
    /// 4 bytes.
    Fp32,
    /// 2 bytes (also FP16).
    Bf16,
    /// 1 byte plus one FP32 scale per 128 elements (DeepSeek-V3's 1 x 128 tiles).
    Fp8,
}

impl WireDtype {
    /// Names scenario files accept, in [`WireDtype::ALL`] order.
    pub const NAMES: &'static [&'static str] = &["fp32", "bf16", "fp8"];
    /// Every type.
    pub const ALL: [WireDtype; 3] = [WireDtype::Fp32, WireDtype::Bf16, WireDtype::Fp8];

    /// Bytes per element, scales included.
    pub fn bytes_per_element(self) -> f64 {
        match self {
            WireDtype::Fp32 => 4.0,
            WireDtype::Bf16 => 2.0,
            WireDtype::Fp8 => 1.0 + 4.0 / 128.0,
        }
    }

    /// Name as scenario files write it.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A gradient compression method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Gradients as the wire type says.
    #[default]
    None,
    /// 1-bit Adam (Tang et al. 2021).
    OnebitAdam,
    /// 1-bit LAMB (Li et al. 2021).
    OnebitLamb,
    /// 0/1 Adam (Lu et al. 2022).
    ZeroOneAdam,
    /// PowerSGD (Vogels et al. 2019).
    Powersgd,
    /// Top-k sparsification with error feedback (DGC, Lin et al. 2018).
    Topk,
    /// ZeRO++ (Wang et al. 2023): qwZ, hpZ, qgZ.
    Zeropp,
}

/// One row of the method table.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// The method.
    pub method: Method,
    /// Name in scenario files.
    pub name: &'static str,
    /// ZeRO stages it runs with.
    pub zero_stages: &'static [u32],
    /// Default fraction of the steps run uncompressed first.
    pub default_warmup_fraction: f64,
    /// Memory-bound bytes of GPU work per gradient element it compresses.
    pub compute_bytes_per_element: f64,
    /// Extra GPU memory per local gradient element, bytes (error feedback, residuals).
    pub buffer_bytes_per_element: f64,
}

/// The method table.
pub const METHODS: [MethodInfo; 7] = [
    MethodInfo {
        method: Method::None,
        name: "none",
        zero_stages: &[0, 1, 2, 3],
        default_warmup_fraction: 0.0,
        compute_bytes_per_element: 0.0,
        buffer_bytes_per_element: 0.0,
    },
    // warm-up ~15-20 % of the steps (DeepSpeed blog); error compensation: a worker and a
    // server error buffer in FP32; momentum read, error read and written, signs packed
    MethodInfo {
        method: Method::OnebitAdam,
        name: "onebit_adam",
        zero_stages: &[0],
        default_warmup_fraction: 0.15,
        compute_bytes_per_element: 16.0,
        buffer_bytes_per_element: 4.0,
    },
    // freeze_step 15-25 % of the steps (DeepSpeed tutorial)
    MethodInfo {
        method: Method::OnebitLamb,
        name: "onebit_lamb",
        zero_stages: &[0],
        default_warmup_fraction: 0.15,
        compute_bytes_per_element: 16.0,
        buffer_bytes_per_element: 4.0,
    },
    MethodInfo {
        method: Method::ZeroOneAdam,
        name: "zero_one_adam",
        zero_stages: &[0],
        default_warmup_fraction: 0.0,
        compute_bytes_per_element: 16.0,
        buffer_bytes_per_element: 4.0,
    },
    // P = M Q and Q = M^T P read the FP32 gradient twice; error feedback reads and writes
    // it once more; one gradient-sized error buffer
    MethodInfo {
        method: Method::Powersgd,
        name: "powersgd",
        zero_stages: &[0, 1],
        default_warmup_fraction: 0.0,
        compute_bytes_per_element: 16.0,
        buffer_bytes_per_element: 4.0,
    },
    // residual accumulation (read, write), threshold selection (two reads): FP32; residual
    // and momentum-correction buffers
    MethodInfo {
        method: Method::Topk,
        name: "topk",
        zero_stages: &[0, 1],
        default_warmup_fraction: 0.0,
        compute_bytes_per_element: 16.0,
        buffer_bytes_per_element: 8.0,
    },
    // qgZ: FP32 gradient read, INT4 written, dequantised after the exchange
    MethodInfo {
        method: Method::Zeropp,
        name: "zeropp",
        zero_stages: &[3],
        default_warmup_fraction: 0.0,
        compute_bytes_per_element: 8.0,
        buffer_bytes_per_element: 0.0,
    },
];

impl Method {
    /// Its row of [`METHODS`].
    pub fn info(self) -> &'static MethodInfo {
        METHODS
            .iter()
            .find(|m| m.method == self)
            .expect("every method has a row")
    }

    /// Method names, in table order.
    pub fn names() -> Vec<&'static str> {
        METHODS.iter().map(|m| m.name).collect()
    }

    /// Whether the compressed exchange is the 1-bit one (1-bit Adam/LAMB, 0/1 Adam).
    pub fn is_onebit(self) -> bool {
        matches!(self, Method::OnebitAdam | Method::OnebitLamb | Method::ZeroOneAdam)
    }
}

/// Gradient compression settings (`[communication]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compression {
    /// The method.
    pub method: Method,
    /// Fraction of the steps run uncompressed first (1-bit methods' warm-up).
    pub warmup_fraction: f64,
    /// 0/1 Adam: one step in this many exchanges gradients.
    pub local_steps: u32,
    /// PowerSGD rank r.
    pub powersgd_rank: u32,
    /// Top-k: fraction of gradient elements sent.
    pub topk_fraction: f64,
    /// ZeRO++ quantised weight all-gather (INT8).
    pub qwz: bool,
    /// ZeRO++ hierarchical partitioning (backward gather inside the node).
    pub hpz: bool,
    /// ZeRO++ quantised gradient reduction (INT4).
    pub qgz: bool,
    /// Extra optimizer steps to reach a target loss, as a fraction of the uncompressed run's.
    pub extra_steps_fraction: f64,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            method: Method::None,
            warmup_fraction: 0.0,
            local_steps: 1,
            powersgd_rank: 1,
            topk_fraction: 0.001,
            qwz: true,
            hpz: true,
            qgz: true,
            extra_steps_fraction: 0.0,
        }
    }
}

/// What one step does with the gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradPhase {
    /// The method's compressed exchange.
    Compressed,
    /// Uncompressed (a warm-up step).
    Uncompressed,
    /// No gradient exchange (0/1 Adam's local steps).
    Local,
}

/// The wire: element type per communication kind and gradient compression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommSpec {
    /// Element type per [`CommKind`] ([`CommKind::index`]).
    pub dtype: [WireDtype; CommKind::COUNT],
    /// Gradient compression.
    pub compression: Compression,
}

impl Default for CommSpec {
    fn default() -> Self {
        CommSpec {
            dtype: [WireDtype::Bf16; CommKind::COUNT],
            compression: Compression::default(),
        }
    }
}

/// The collectives of one gradient bucket, bytes as they go on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct GradExchange {
    /// Collectives, run one after the other.
    pub collectives: Vec<(CollectiveKind, f64)>,
    /// Memory-bound bytes of GPU work before the first.
    pub compute_bytes: f64,
}

/// Gradient elements of a bucket: all of them, and what PowerSGD sends of them per unit
/// of rank (`sum(n)`, `sum(m)` over compressed matrices, and the elements sent as they are).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BucketElements {
    /// Gradient elements.
    pub elements: f64,
    /// Sum of the row counts of the matrices PowerSGD compresses.
    pub rows: f64,
    /// Sum of their column counts.
    pub cols: f64,
    /// Elements PowerSGD sends uncompressed.
    pub plain: f64,
}

impl BucketElements {
    /// Adds `count` matrices `n x m`, compressed at rank `r` when it gains (`(n+m) r 2 < n m`).
    pub fn add_matrix(&mut self, n: f64, m: f64, count: f64, r: u32) {
        self.elements += n * m * count;
        if (n + m) * r as f64 * 2.0 < n * m {
            self.rows += n * count;
            self.cols += m * count;
        } else {
            self.plain += n * m * count;
        }
    }

    /// Adds `x` elements of 1-D tensors (always sent uncompressed).
    pub fn add_plain(&mut self, x: f64) {
        self.elements += x;
        self.plain += x;
    }

    /// Adds another bucket.
    pub fn add(&mut self, o: &BucketElements) {
        self.elements += o.elements;
        self.rows += o.rows;
        self.cols += o.cols;
        self.plain += o.plain;
    }

    /// Elements PowerSGD compresses.
    pub fn compressed(&self) -> f64 {
        self.elements - self.plain
    }
}

impl CommSpec {
    /// Bytes per element on the wire of `kind`.
    pub fn bytes_per_element(&self, kind: CommKind) -> f64 {
        self.dtype[kind.index()].bytes_per_element()
    }

    /// Factor on the 16-bit bytes of `kind` (1 for BF16).
    pub fn factor(&self, kind: CommKind) -> f64 {
        self.bytes_per_element(kind) / 2.0
    }

    /// The phases of a run, each with the fraction of its steps.
    pub fn phases(&self) -> Vec<(GradPhase, f64)> {
        let c = &self.compression;
        if c.method == Method::None {
            return vec![(GradPhase::Compressed, 1.0)];
        }
        let w = c.warmup_fraction;
        let rest = 1.0 - w;
        let k = c.local_steps.max(1) as f64;
        let mut v = vec![(GradPhase::Compressed, rest / k)];
        if w > 0.0 {
            v.push((GradPhase::Uncompressed, w));
        }
        if c.method == Method::ZeroOneAdam && k > 1.0 {
            v.push((GradPhase::Local, rest * (k - 1.0) / k));
        }
        v
    }

    /// Whether a phase reduces gradients in backward buckets (else once per chunk after
    /// its last backward, in the optimizer step).
    pub fn bucketed(&self, phase: GradPhase) -> bool {
        !(phase == GradPhase::Compressed && self.compression.method.is_onebit())
    }

    /// The gradient exchange of a bucket over a group of `group` ranks under ZeRO stage
    /// `zero_stage`, in `phase` (`None`: nothing to send).
    pub fn grad_exchange(
        &self,
        phase: GradPhase,
        zero_stage: u32,
        group: u32,
        e: &BucketElements,
    ) -> Option<GradExchange> {
        let d = self.bytes_per_element(CommKind::DpGrad);
        let plain_kind = if zero_stage >= 1 {
            CollectiveKind::ReduceScatter
        } else {
            CollectiveKind::AllReduce
        };
        let plain = GradExchange {
            collectives: vec![(plain_kind, d * e.elements)],
            compute_bytes: 0.0,
        };
        let c = &self.compression;
        let per = c.method.info().compute_bytes_per_element;
        match phase {
            GradPhase::Local => return None,
            GradPhase::Uncompressed => return Some(plain),
            GradPhase::Compressed => {}
        }
        Some(match c.method {
            Method::None => plain,
            // one bit per element
            Method::OnebitAdam | Method::OnebitLamb | Method::ZeroOneAdam => GradExchange {
                collectives: vec![(CollectiveKind::AllReduce, e.elements / 8.0)],
                compute_bytes: per * e.elements,
            },
            Method::Powersgd => {
                let r = c.powersgd_rank as f64;
                GradExchange {
                    collectives: vec![
                        (CollectiveKind::AllReduce, d * (r * e.rows + e.plain)),
                        (CollectiveKind::AllReduce, d * r * e.cols),
                    ],
                    compute_bytes: per * e.compressed(),
                }
            }
            // values and 4-byte indices of every rank's top k, all-gathered
            Method::Topk => {
                let k = (c.topk_fraction * e.elements).ceil();
                GradExchange {
                    collectives: vec![(CollectiveKind::AllGather, group as f64 * k * (d + 4.0))],
                    compute_bytes: per * e.elements + group as f64 * k * (d + 4.0),
                }
            }
            Method::Zeropp if c.qgz => GradExchange {
                collectives: vec![(CollectiveKind::ReduceScatter, 0.5 * e.elements)],
                compute_bytes: per * e.elements,
            },
            Method::Zeropp => plain,
        })
    }

    /// Bytes per element of the ZeRO-3 parameter gathers: (forward, backward), and whether
    /// the backward one stays inside the node (hpZ).
    pub fn zero3_gather(&self) -> (f64, f64, bool) {
        let d = self.bytes_per_element(CommKind::DpParam);
        let c = &self.compression;
        if c.method != Method::Zeropp {
            return (d, d, false);
        }
        let q = if c.qwz { 1.0 } else { d };
        if c.hpz {
            (q, d, true)
        } else {
            (q, q, false)
        }
    }

    /// Extra GPU memory per local gradient element (error feedback, residuals), bytes, in
    /// a gradient group of `group` ranks: 1-bit methods keep a worker error (FP32, every
    /// element) and a server error (FP32, the rank's `1/group` chunk).
    pub fn buffer_bytes_per_element(&self, group: u32) -> f64 {
        let m = self.compression.method;
        if m.is_onebit() {
            4.0 + 4.0 / group.max(1) as f64
        } else {
            m.info().buffer_bytes_per_element
        }
    }
}

/// The gradient elements of layer `layer` on one GPU, as matrices and 1-D tensors: the
/// dense part (split over TP) and the routed experts (split over EP); `r`: PowerSGD's rank.
/// The elements of each part sum to its parameters on the GPU; parameters no matrix below
/// accounts for (norms, router, MLA's latent projections beyond Q/K/V) count as 1-D.
pub fn layer_grad_elements(m: &TransformerSpec, p: &ParallelPlan, layer: u32, r: u32) -> [BucketElements; 2] {
    let (h, tp) = (m.hidden_size as f64, p.tp as f64);
    let proj = m.ffn_in_projections();
    let mut mats: Vec<(f64, f64, f64)> = vec![
        (h, (m.q_dim() + 2.0 * m.kv_dim()) / tp, 1.0),
        (m.attn_out_dim() / tp, h, 1.0),
    ];
    let mut experts = BucketElements::default();
    match m.moe.as_ref().filter(|_| m.is_moe_layer(layer)) {
        Some(moe) => {
            let fs = (moe.shared_expert_ffn_hidden_size * moe.num_shared_experts) as f64 / tp;
            if fs > 0.0 {
                mats.push((h, fs * proj, 1.0));
                mats.push((fs, h, 1.0));
            }
            let fe = moe.expert_ffn_hidden_size as f64;
            let local = moe.num_experts as f64 / (p.ep * p.expert_tp).max(1) as f64;
            experts.add_matrix(h, fe * proj, local, r);
            experts.add_matrix(fe, h, local, r);
        }
        None => {
            let f = m.ffn_hidden_size as f64 / tp;
            mats.push((h, f * proj, 1.0));
            mats.push((f, h, 1.0));
        }
    }
    let total = m.layer_dense_params(layer) / tp;
    let in_mats: f64 = mats.iter().map(|(n, c, k)| n * c * k).sum();
    // matrices never exceed the layer (MLA's attention is smaller than Q/K/V at full width)
    let scale = if in_mats > total { total / in_mats } else { 1.0 };
    let mut dense = BucketElements::default();
    for (n, c, k) in mats {
        dense.add_matrix(n, c, k * scale, r);
    }
    dense.add_plain((total - in_mats * scale).max(0.0));
    [dense, experts]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: Method) -> CommSpec {
        CommSpec {
            compression: Compression {
                method,
                warmup_fraction: method.info().default_warmup_fraction,
                ..Compression::default()
            },
            ..CommSpec::default()
        }
    }

    #[test]
    fn onebit_volume_ratio_matches_the_blog_formula() {
        // original / 1-bit = 1 / (w + (1 - w) / 16); w = 15 % -> 4.923
        let s = spec(Method::OnebitAdam);
        let e = BucketElements {
            elements: 1e9,
            ..Default::default()
        };
        let mut bytes = 0.0;
        for (ph, f) in s.phases() {
            if let Some(x) = s.grad_exchange(ph, 0, 8, &e) {
                bytes += f * x.collectives.iter().map(|c| c.1).sum::<f64>();
            }
        }
        let ratio = 2.0 * 1e9 / bytes;
        assert!((ratio - 4.923).abs() < 1e-3, "{ratio}");
    }

    #[test]
    fn powersgd_sends_r_n_plus_m_and_skips_small_matrices() {
        let mut e = BucketElements::default();
        e.add_matrix(4096.0, 4096.0, 1.0, 4);
        e.add_matrix(8.0, 8.0, 1.0, 4); // (8 + 8) 4 2 = 128 > 64: sent as is
        e.add_plain(4096.0);
        let x = spec(Method::Powersgd);
        let mut s = x.clone();
        s.compression.powersgd_rank = 4;
        let g = s.grad_exchange(GradPhase::Compressed, 0, 8, &e).unwrap();
        assert_eq!(g.collectives[0].1, 2.0 * (4.0 * 4096.0 + 64.0 + 4096.0));
        assert_eq!(g.collectives[1].1, 2.0 * 4.0 * 4096.0);
    }

    #[test]
    fn zeropp_cuts_cross_node_volume_fourfold() {
        // 3M -> 0.75M: forward gather 2 -> 1 byte, backward gather off the NIC, gradients
        // 2 -> 0.5 byte
        let s = spec(Method::Zeropp);
        let (fwd, _, intra) = s.zero3_gather();
        let e = BucketElements {
            elements: 1.0,
            ..Default::default()
        };
        let g = s.grad_exchange(GradPhase::Compressed, 3, 8, &e).unwrap();
        let cross = fwd + if intra { 0.0 } else { 2.0 } + g.collectives[0].1;
        assert_eq!(cross / 6.0, 0.25);
    }

    #[test]
    fn zero_one_adam_local_steps_skip_the_exchange() {
        let mut s = spec(Method::ZeroOneAdam);
        s.compression.local_steps = 4;
        let ph = s.phases();
        assert_eq!(ph.iter().map(|p| p.1).sum::<f64>(), 1.0);
        assert!(ph.contains(&(GradPhase::Local, 0.75)));
        assert!(s
            .grad_exchange(GradPhase::Local, 0, 8, &BucketElements::default())
            .is_none());
    }
}
