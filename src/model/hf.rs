//! Hugging Face `config.json` import (`[model] hf_config = "path/config.json"`): the
//! architecture fields of the Llama, Mistral, Qwen2/Qwen3 (dense and MoE), Mixtral,
//! DeepSeek-V2/V3 and GPT-OSS families mapped onto a [`TransformerSpec`].
//!
//! | trainsim | config.json |
//! |---|---|
//! | `num_layers` | `num_hidden_layers` |
//! | `hidden_size` | `hidden_size` |
//! | `num_heads`, `num_kv_heads` | `num_attention_heads`, `num_key_value_heads` (default: all heads) |
//! | `head_dim` | `head_dim`, else `v_head_dim` (MLA), else hidden / heads |
//! | `ffn_hidden_size` | `intermediate_size` (the dense MLP) |
//! | `ffn_type` | `swiglu` (these families' MLPs are gated: `hidden_act` silu) |
//! | `vocab_size`, `tied_embeddings` | `vocab_size`, `tie_word_embeddings` (default false) |
//! | `num_experts` | `num_local_experts` (Mixtral, GPT-OSS), `num_experts` (Qwen MoE), `n_routed_experts` (DeepSeek) |
//! | `top_k` | `num_experts_per_tok` (or `experts_per_token`) |
//! | `expert_ffn_hidden_size` | `moe_intermediate_size`, else `intermediate_size` |
//! | `num_shared_experts`, `shared_expert_ffn_hidden_size` | `n_shared_experts` x `moe_intermediate_size` (DeepSeek); one of `shared_expert_intermediate_size` (Qwen2-MoE) |
//! | `first_dense_layers` | `first_k_dense_replace` (DeepSeek) |
//! | MLA ranks and head widths | `q_lora_rank` (null: 0), `kv_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim` |
//!
//! What the format has and trainsim does not model (sliding windows, attention sinks,
//! multi-token-prediction layers, MoE layers that are not a suffix of the stack) is either
//! ignored where it does not change the per-layer cost much (noted in the docs) or refused
//! with the reason.

use super::{Attention, FfnType, MoeSpec, TransformerSpec};
use serde_json::Value;
use std::path::Path;

/// `model_type` values understood, by family.
pub const MODEL_TYPES: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "qwen2_moe",
    "qwen3_moe",
    "mixtral",
    "deepseek_v2",
    "deepseek_v3",
    "gpt_oss",
];

/// Reads and maps a config.json; the error says what is missing or unsupported.
pub fn load(path: &Path) -> Result<TransformerSpec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("could not be read: {} ({e})", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let name = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hf-model".into());
    from_json(&v, &name).map_err(|e| format!("{}: {e}", path.display()))
}

fn u(v: &Value, key: &str) -> Result<Option<u32>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("`{key}` = {x} is not a whole number")),
    }
}

fn need(v: &Value, key: &str) -> Result<u32, String> {
    u(v, key)?.ok_or_else(|| format!("`{key}` is missing (needed for the {} family)", family(v)))
}

fn family(v: &Value) -> &str {
    v.get("model_type").and_then(Value::as_str).unwrap_or("?")
}

/// Maps a parsed config.json; `name` names the model in reports.
pub fn from_json(v: &Value, name: &str) -> Result<TransformerSpec, String> {
    let model_type = v
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or("`model_type` is missing: trainsim reads the Llama, Qwen, Mixtral, DeepSeek and GPT-OSS families")?;
    if !MODEL_TYPES.contains(&model_type) {
        return Err(format!(
            "model_type \"{model_type}\" is not supported; supported: {}",
            MODEL_TYPES.join(", ")
        ));
    }
    if let Some(act) = v.get("hidden_act").and_then(Value::as_str) {
        if !matches!(act, "silu" | "swish" | "swiglu") {
            return Err(format!(
                "hidden_act \"{act}\": only gated SiLU MLPs (silu, SwiGLU) are read from config.json"
            ));
        }
    }
    let num_layers = need(v, "num_hidden_layers")?;
    let hidden_size = need(v, "hidden_size")?;
    let num_heads = need(v, "num_attention_heads")?;
    let num_kv_heads = u(v, "num_key_value_heads")?.unwrap_or(num_heads);
    let vocab_size = need(v, "vocab_size")?;
    let ffn = need(v, "intermediate_size")?;
    let tied = v.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false);
    let attention = match u(v, "kv_lora_rank")? {
        Some(kv) => Attention::Mla {
            q_lora_rank: u(v, "q_lora_rank")?.unwrap_or(0),
            kv_lora_rank: kv,
            qk_nope_head_dim: need(v, "qk_nope_head_dim")?,
            qk_rope_head_dim: u(v, "qk_rope_head_dim")?.unwrap_or(0),
            v_head_dim: need(v, "v_head_dim")?,
        },
        None => Attention::Standard,
    };
    let head_dim = match (u(v, "head_dim")?, &attention) {
        (Some(h), _) => h,
        (None, Attention::Mla { v_head_dim, .. }) => *v_head_dim,
        (None, Attention::Standard) => {
            if num_heads == 0 || hidden_size % num_heads != 0 {
                return Err(format!(
                    "`head_dim` is missing and num_attention_heads = {num_heads} does not divide hidden_size = {hidden_size}"
                ));
            }
            hidden_size / num_heads
        }
    };
    let experts = match (
        u(v, "num_local_experts")?,
        u(v, "num_experts")?,
        u(v, "n_routed_experts")?,
    ) {
        (Some(e), _, _) | (None, Some(e), _) | (None, None, Some(e)) => Some(e),
        _ => None,
    };
    let moe = match experts {
        None | Some(0) => None,
        Some(num_experts) => {
            let top_k = match (u(v, "num_experts_per_tok")?, u(v, "experts_per_token")?) {
                (Some(k), _) | (None, Some(k)) => k,
                _ => return Err("`num_experts_per_tok` is missing (experts per token of a MoE model)".into()),
            };
            let expert_ffn = u(v, "moe_intermediate_size")?.unwrap_or(ffn);
            let (shared, shared_ffn) = match (u(v, "n_shared_experts")?, u(v, "shared_expert_intermediate_size")?) {
                (Some(n), _) if n > 0 => (n, expert_ffn),
                (_, Some(w)) if w > 0 => (1, w),
                _ => (0, expert_ffn),
            };
            let mut first_dense = u(v, "first_k_dense_replace")?.unwrap_or(0);
            let step = u(v, "decoder_sparse_step")?.unwrap_or(1);
            let freq = u(v, "moe_layer_freq")?.unwrap_or(1);
            if step > 1 || freq > 1 {
                return Err(format!(
                    "MoE layers every {} layers are not modelled yet (only a dense prefix, then every layer MoE)",
                    step.max(freq)
                ));
            }
            if let Some(only) = v.get("mlp_only_layers").and_then(Value::as_array) {
                let mut idx: Vec<u64> = only.iter().filter_map(Value::as_u64).collect();
                idx.sort_unstable();
                if idx.iter().enumerate().any(|(i, &l)| l != i as u64) {
                    return Err("`mlp_only_layers` that are not the first layers are not modelled yet".into());
                }
                first_dense = first_dense.max(idx.len() as u32);
            }
            Some(MoeSpec {
                num_experts,
                top_k,
                num_shared_experts: shared,
                expert_ffn_hidden_size: expert_ffn,
                shared_expert_ffn_hidden_size: shared_ffn,
                first_dense_layers: first_dense,
            })
        }
    };
    let m = base(
        name,
        num_layers,
        hidden_size,
        num_heads,
        num_kv_heads,
        head_dim,
        ffn,
        vocab_size,
        tied,
        attention,
    );
    Ok(match moe {
        Some(s) => with_moe(m, s),
        None => m,
    })
}

#[allow(clippy::too_many_arguments)]
fn base(
    name: &str,
    num_layers: u32,
    hidden_size: u32,
    num_heads: u32,
    num_kv_heads: u32,
    head_dim: u32,
    ffn: u32,
    vocab_size: u32,
    tied: bool,
    attention: Attention,
) -> TransformerSpec {
    TransformerSpec {
        name: name.to_string(),
        num_layers,
        hidden_size,
        num_heads,
        num_kv_heads,
        head_dim,
        ffn_hidden_size: ffn,
        ffn_type: FfnType::Swiglu,
        vocab_size,
        tied_embeddings: tied,
        published_params_b: 0.0,
        attention,
        moe: None,
        mtp_modules: 0,
    }
}

fn with_moe(m: TransformerSpec, moe: MoeSpec) -> TransformerSpec {
    TransformerSpec { moe: Some(moe), ..m }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qwen2_dense_and_qwen2_moe_shared_expert() {
        let dense = json!({"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
            "vocab_size": 152064, "hidden_act": "silu", "tie_word_embeddings": false});
        let m = from_json(&dense, "qwen2.5-7b").unwrap();
        assert_eq!(
            (m.num_layers, m.head_dim, m.num_kv_heads, m.ffn_hidden_size),
            (28, 128, 4, 18944)
        );
        assert!(m.moe.is_none() && !m.tied_embeddings);
        let moe = json!({"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24,
            "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
            "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
            "num_experts_per_tok": 4, "vocab_size": 151936, "decoder_sparse_step": 1, "mlp_only_layers": []});
        let m = from_json(&moe, "qwen1.5-moe").unwrap();
        let s = m.moe.unwrap();
        assert_eq!((s.num_experts, s.top_k, s.expert_ffn_hidden_size), (60, 4, 1408));
        assert_eq!((s.num_shared_experts, s.shared_expert_ffn_hidden_size), (1, 5632));
    }

    #[test]
    fn unsupported_families_and_layouts_say_why() {
        let e = from_json(&json!({"model_type": "gemma2"}), "x").unwrap_err();
        assert!(e.contains("not supported") && e.contains("llama"), "{e}");
        let e = from_json(
            &json!({"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 4,
                "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100,
                "num_experts": 8, "num_experts_per_tok": 2, "decoder_sparse_step": 2}),
            "x",
        )
        .unwrap_err();
        assert!(e.contains("not modelled yet"), "{e}");
        let e = from_json(&json!({"model_type": "llama", "hidden_size": 64}), "x").unwrap_err();
        assert!(e.contains("num_hidden_layers"), "{e}");
    }
}
