//! Decoder-only transformer architectures, dense or Mixture-of-Experts: dimensions,
//! parameter counts (total, active, per layer, expert vs dense) and the model-FLOP count
//! used for MFU.
//!
//! Owns: [`TransformerSpec`], [`moe::MoeSpec`], [`moe::Attention`] and the presets. Does
//! not own: how the model is split across GPUs (parallel) or which kernels run (workload).

pub mod hf;
pub mod moe;
pub mod presets;

pub use moe::{Attention, MoeSpec};

use serde::{Deserialize, Serialize};

/// MLP flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnType {
    /// Two matrices, GeLU in between (GPT).
    Gelu,
    /// Two matrices, ReLU (OPT).
    Relu,
    /// Two matrices, squared ReLU (Nemotron).
    SquaredRelu,
    /// Three matrices: gate and up projections, SiLU-gated product, down projection (Llama).
    Swiglu,
}

impl FfnType {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["gelu", "relu", "squared_relu", "swiglu"];

    /// True for gated MLPs (two input projections).
    pub fn is_gated(self) -> bool {
        matches!(self, FfnType::Swiglu)
    }
}

/// Architecture of a dense decoder-only transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerSpec {
    /// Preset name or "custom".
    pub name: String,
    /// Transformer layers.
    pub num_layers: u32,
    /// Model (residual stream) width.
    pub hidden_size: u32,
    /// Query heads.
    pub num_heads: u32,
    /// Key/value heads (= num_heads without GQA).
    pub num_kv_heads: u32,
    /// Width of one head.
    pub head_dim: u32,
    /// MLP inner width (per projection for gated MLPs).
    pub ffn_hidden_size: u32,
    /// MLP flavour.
    pub ffn_type: FfnType,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Input embedding and output projection share one matrix.
    pub tied_embeddings: bool,
    /// Published total parameter count, billions (for reference only; 0 when unknown).
    pub published_params_b: f64,
    /// Attention variant (standard MHA/GQA unless MLA).
    #[serde(default)]
    pub attention: Attention,
    /// Mixture-of-Experts MLP (absent for dense models).
    #[serde(default)]
    pub moe: Option<MoeSpec>,
    /// Multi-token-prediction modules (DeepSeek-V3: 1), after the output head: each is
    /// two norms, a projection of the concatenated hidden state and next-token embedding
    /// (`2h -> h`), one transformer layer like the last one, and the shared output head.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtp_modules: u32,
}

fn is_zero(x: &u32) -> bool {
    *x == 0
}

impl TransformerSpec {
    /// Per-head query/key width (head_dim, or nope + rope under MLA).
    pub fn qk_head_dim(&self) -> f64 {
        match self.attention {
            Attention::Standard => self.head_dim as f64,
            Attention::Mla {
                qk_nope_head_dim,
                qk_rope_head_dim,
                ..
            } => (qk_nope_head_dim + qk_rope_head_dim) as f64,
        }
    }

    /// Per-head value width.
    pub fn v_head_dim(&self) -> f64 {
        match self.attention {
            Attention::Standard => self.head_dim as f64,
            Attention::Mla { v_head_dim, .. } => v_head_dim as f64,
        }
    }

    /// Width of the concatenated query heads.
    pub fn q_dim(&self) -> f64 {
        self.num_heads as f64 * self.qk_head_dim()
    }

    /// Width of the concatenated key (or value) heads; under MLA the mean of the
    /// up-projected key and value widths, so that `q_dim + 2 kv_dim` is the Q, K, V width.
    pub fn kv_dim(&self) -> f64 {
        match self.attention {
            Attention::Standard => self.num_kv_heads as f64 * self.head_dim as f64,
            Attention::Mla { .. } => self.num_heads as f64 * (self.qk_head_dim() + self.v_head_dim()) / 2.0,
        }
    }

    /// Input width of the attention output projection.
    pub fn attn_out_dim(&self) -> f64 {
        self.num_heads as f64 * self.v_head_dim()
    }

    /// Number of MLP input projections (2 for gated MLPs).
    pub fn ffn_in_projections(&self) -> f64 {
        if self.ffn_type.is_gated() {
            2.0
        } else {
            1.0
        }
    }

    /// Attention matrices of one layer.
    pub fn attention_params(&self) -> f64 {
        let h = self.hidden_size as f64;
        match self.attention {
            Attention::Standard => h * (self.q_dim() + 2.0 * self.kv_dim()) + self.q_dim() * h,
            Attention::Mla {
                q_lora_rank,
                kv_lora_rank,
                qk_rope_head_dim,
                ..
            } => {
                let (ql, kvl) = (q_lora_rank as f64, kv_lora_rank as f64);
                let heads = self.num_heads as f64;
                let q = if q_lora_rank > 0 {
                    h * ql + ql + ql * self.q_dim()
                } else {
                    h * self.q_dim()
                };
                let kv = h * (kvl + qk_rope_head_dim as f64)
                    + kvl
                    + kvl * heads * (self.qk_head_dim() - qk_rope_head_dim as f64 + self.v_head_dim());
                q + kv + self.attn_out_dim() * h
            }
        }
    }

    /// Whether layer `layer` (0-based) has a sparse MoE MLP.
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        self.moe.as_ref().is_some_and(|m| layer >= m.first_dense_layers)
    }

    /// Index of the transformer layer of MTP module `d` (numbered after the main layers;
    /// it is built like the last main layer).
    pub fn mtp_layer(&self, d: u32) -> u32 {
        self.num_layers + d
    }

    /// Parameters of one MTP module besides its transformer layer: the `2h x h`
    /// projection and the two norms (the embedding and the output head are shared).
    pub fn mtp_extra_params(&self) -> f64 {
        let h = self.hidden_size as f64;
        2.0 * h * h + 2.0 * h
    }

    /// Number of MoE layers.
    pub fn num_moe_layers(&self) -> u32 {
        (0..self.num_layers).filter(|&l| self.is_moe_layer(l)).count() as u32
    }

    /// Parameters of one routed expert (0 for dense models).
    pub fn expert_params(&self) -> f64 {
        self.moe.as_ref().map_or(0.0, |m| {
            (self.ffn_in_projections() + 1.0) * self.hidden_size as f64 * m.expert_ffn_hidden_size as f64
        })
    }

    /// Parameters of layer `layer` that every rank of its tensor-parallel group holds a
    /// slice of (attention, dense MLP or router and shared experts, norms): everything but
    /// the routed experts.
    pub fn layer_dense_params(&self, layer: u32) -> f64 {
        let h = self.hidden_size as f64;
        let proj = self.ffn_in_projections() + 1.0;
        let mlp = match &self.moe {
            Some(m) if self.is_moe_layer(layer) => {
                h * m.num_experts as f64
                    + m.num_shared_experts as f64 * proj * h * m.shared_expert_ffn_hidden_size as f64
            }
            _ => proj * h * self.ffn_hidden_size as f64,
        };
        self.attention_params() + mlp + 2.0 * h
    }

    /// Routed-expert parameters of layer `layer` (all experts; 0 for dense layers).
    pub fn layer_expert_params(&self, layer: u32) -> f64 {
        match &self.moe {
            Some(m) if self.is_moe_layer(layer) => m.num_experts as f64 * self.expert_params(),
            _ => 0.0,
        }
    }

    /// All parameters of layer `layer`.
    pub fn layer_params(&self, layer: u32) -> f64 {
        self.layer_dense_params(layer) + self.layer_expert_params(layer)
    }

    /// Parameters of an average layer (all layers' parameters over the layer count).
    pub fn params_per_layer(&self) -> f64 {
        (0..self.num_layers).map(|l| self.layer_params(l)).sum::<f64>() / self.num_layers.max(1) as f64
    }

    /// Parameters of the input embedding (and of the output projection when untied).
    pub fn embedding_params(&self) -> f64 {
        let e = self.vocab_size as f64 * self.hidden_size as f64;
        if self.tied_embeddings {
            e
        } else {
            2.0 * e
        }
    }

    /// Total parameters.
    pub fn total_params(&self) -> f64 {
        (0..self.num_layers).map(|l| self.layer_params(l)).sum::<f64>()
            + self.embedding_params()
            + self.hidden_size as f64
    }

    /// Parameters one token passes through (routed experts counted `top_k` times);
    /// equals [`Self::total_params`] for dense models.
    pub fn active_params(&self) -> f64 {
        let k = self.moe.as_ref().map_or(0.0, |m| m.top_k as f64);
        (0..self.num_layers)
            .map(|l| {
                self.layer_dense_params(l)
                    + if self.is_moe_layer(l) {
                        k * self.expert_params()
                    } else {
                        0.0
                    }
            })
            .sum::<f64>()
            + self.embedding_params()
            + self.hidden_size as f64
    }

    /// Forward matrix-multiply FLOPs per token of layer `layer` (routed experts `top_k`
    /// times), excluding attention scores.
    pub fn layer_matmul_flops(&self, layer: u32) -> f64 {
        let h = self.hidden_size as f64;
        let mut p = self.layer_dense_params(layer) - 2.0 * h;
        if let (Some(m), true) = (&self.moe, self.is_moe_layer(layer)) {
            p += m.top_k as f64 * self.expert_params();
        }
        2.0 * p
    }

    /// Forward matrix-multiply FLOPs per token of an average layer, excluding attention scores.
    pub fn layer_matmul_flops_per_token(&self) -> f64 {
        (0..self.num_layers).map(|l| self.layer_matmul_flops(l)).sum::<f64>() / self.num_layers.max(1) as f64
    }

    /// Forward attention-score FLOPs (QK^T and PV) per token of one layer, causal
    /// (half of the `s x s` matrix is computed).
    pub fn layer_attention_flops_per_token(&self, seq_length: u32) -> f64 {
        2.0 * seq_length as f64 * self.num_heads as f64 * (self.qk_head_dim() + self.v_head_dim()) * 0.5
    }

    /// Model FLOPs of one training step on `tokens` tokens: forward + backward (3x forward)
    /// of all matrix multiplies (routed experts counted `top_k` times), causal attention
    /// scores and the output projection; no recomputation. This is the MFU numerator
    /// (documented in docs/results.md).
    pub fn model_flops(&self, tokens: f64, seq_length: u32) -> f64 {
        let per_token = (0..self.num_layers).map(|l| self.layer_matmul_flops(l)).sum::<f64>()
            + self.num_layers as f64 * self.layer_attention_flops_per_token(seq_length)
            + 2.0 * self.hidden_size as f64 * self.vocab_size as f64;
        3.0 * per_token * tokens
    }
}

#[cfg(test)]
mod tests {
    use super::presets::{model_preset, MODEL_PRESETS};

    #[test]
    fn preset_parameter_counts_match_published_totals_within_one_percent() {
        for name in MODEL_PRESETS {
            let m = model_preset(name).unwrap();
            let got_b = m.total_params() / 1e9;
            let rel = (got_b / m.published_params_b - 1.0).abs();
            assert!(
                rel < 0.01,
                "{name}: {got_b:.2} B vs published {} B ({:.2}%)",
                m.published_params_b,
                rel * 100.0
            );
        }
    }

    #[test]
    fn model_flops_are_six_n_d_plus_attention() {
        let m = model_preset("llama3-8b").unwrap();
        let tokens = 1e6;
        let s = 8192;
        let six_nd = 6.0 * (m.total_params() - m.vocab_size as f64 * m.hidden_size as f64) * tokens;
        let attn = 3.0 * m.num_layers as f64 * m.layer_attention_flops_per_token(s) * tokens;
        let f = m.model_flops(tokens, s);
        // 6ND counts the norm weights too; they carry no matmul FLOPs (relative 1e-4)
        assert!((f / (six_nd + attn) - 1.0).abs() < 1e-3, "{f} vs {}", six_nd + attn);
    }
}
