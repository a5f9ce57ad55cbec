//! Dense decoder-only transformer architectures: dimensions, parameter counts and the
//! model-FLOP count used for MFU.
//!
//! Owns: [`TransformerSpec`] and its presets. Does not own: how the model is split across
//! GPUs (parallel) or which kernels run (workload).

pub mod presets;

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
}

impl TransformerSpec {
    /// Width of the concatenated query heads.
    pub fn q_dim(&self) -> f64 {
        self.num_heads as f64 * self.head_dim as f64
    }

    /// Width of the concatenated key (or value) heads.
    pub fn kv_dim(&self) -> f64 {
        self.num_kv_heads as f64 * self.head_dim as f64
    }

    /// Number of MLP input projections (2 for gated MLPs).
    pub fn ffn_in_projections(&self) -> f64 {
        if self.ffn_type.is_gated() {
            2.0
        } else {
            1.0
        }
    }

    /// Parameters of one transformer layer (matrices and norm weights; biases ignored).
    pub fn params_per_layer(&self) -> f64 {
        let h = self.hidden_size as f64;
        let f = self.ffn_hidden_size as f64;
        let attn = h * (self.q_dim() + 2.0 * self.kv_dim()) + self.q_dim() * h;
        let mlp = (self.ffn_in_projections() + 1.0) * h * f;
        attn + mlp + 2.0 * h
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
        self.num_layers as f64 * self.params_per_layer() + self.embedding_params() + self.hidden_size as f64
    }

    /// Forward matrix-multiply FLOPs per token of one layer, excluding attention scores.
    pub fn layer_matmul_flops_per_token(&self) -> f64 {
        let h = self.hidden_size as f64;
        2.0 * (self.params_per_layer() - 2.0 * h)
    }

    /// Forward attention-score FLOPs (QK^T and PV) per token of one layer, causal
    /// (half of the `s x s` matrix is computed).
    pub fn layer_attention_flops_per_token(&self, seq_length: u32) -> f64 {
        2.0 * 2.0 * seq_length as f64 * self.q_dim() * 0.5
    }

    /// Model FLOPs of one training step on `tokens` tokens: forward + backward (3x forward)
    /// of all matrix multiplies, causal attention scores and the output projection; no
    /// recomputation. This is the MFU numerator (documented in docs/results.md).
    pub fn model_flops(&self, tokens: f64, seq_length: u32) -> f64 {
        let per_token = self.num_layers as f64
            * (self.layer_matmul_flops_per_token() + self.layer_attention_flops_per_token(seq_length))
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
