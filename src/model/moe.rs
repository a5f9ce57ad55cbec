//! Mixture-of-Experts layers and multi-head latent attention (MLA): the architecture
//! facts the rest of trainsim needs (expert count and size, routing fan-out, which layers
//! are sparse, MLA projection ranks).
//!
//! Owns: [`MoeSpec`] and [`Attention`]. Does not own: how experts are spread over GPUs
//! (parallel), how tokens are routed in a step (workload::routing) or kernel times.

use serde::{Deserialize, Serialize};

/// Sparse MLP of the MoE layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoeSpec {
    /// Routed experts per MoE layer.
    pub num_experts: u32,
    /// Experts each token is sent to.
    pub top_k: u32,
    /// Shared experts every token passes through (DeepSeek), 0 for none.
    pub num_shared_experts: u32,
    /// Inner width of one routed expert (per projection for gated MLPs).
    pub expert_ffn_hidden_size: u32,
    /// Inner width of one shared expert (per projection for gated MLPs).
    pub shared_expert_ffn_hidden_size: u32,
    /// Leading layers that keep a dense MLP of `ffn_hidden_size` (DeepSeek-V3: 3).
    pub first_dense_layers: u32,
}

/// Attention variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Attention {
    /// Multi-head / grouped-query attention with `num_heads` query heads of `head_dim`
    /// and `num_kv_heads` key/value heads.
    #[default]
    Standard,
    /// Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values pass through
    /// low-rank latent projections; keys carry a shared rotary part.
    Mla {
        /// Rank of the query down-projection (0: queries are projected directly).
        q_lora_rank: u32,
        /// Rank of the joint key/value down-projection.
        kv_lora_rank: u32,
        /// Per-head query/key width without rotary embedding.
        qk_nope_head_dim: u32,
        /// Per-head (query) and shared (key) rotary width.
        qk_rope_head_dim: u32,
        /// Per-head value width.
        v_head_dim: u32,
    },
}

impl Attention {
    /// Names accepted in scenario files.
    pub const NAMES: &'static [&'static str] = &["standard", "mla"];
}
