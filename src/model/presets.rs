//! Model presets with their published parameter totals (sources in
//! `shared/validation/published-runs.md`, "Model architectures used above").

use super::{Attention, FfnType, MoeSpec, TransformerSpec};

#[allow(clippy::too_many_arguments)]
fn m(
    name: &str,
    layers: u32,
    hidden: u32,
    heads: u32,
    kv: u32,
    ffn: u32,
    ffn_type: FfnType,
    vocab: u32,
    tied: bool,
    published_b: f64,
) -> TransformerSpec {
    TransformerSpec {
        name: name.to_string(),
        num_layers: layers,
        hidden_size: hidden,
        num_heads: heads,
        num_kv_heads: kv,
        head_dim: hidden / heads,
        ffn_hidden_size: ffn,
        ffn_type,
        vocab_size: vocab,
        tied_embeddings: tied,
        published_params_b: published_b,
        attention: Attention::Standard,
        moe: None,
        mtp_modules: 0,
    }
}

/// A MoE model: `m(...)` with `experts` routed experts of width `expert_ffn`, `top_k`,
/// `shared` shared experts (same width) and `first_dense` leading dense layers.
fn moe(
    dense: TransformerSpec,
    experts: u32,
    top_k: u32,
    shared: u32,
    expert_ffn: u32,
    first_dense: u32,
) -> TransformerSpec {
    TransformerSpec {
        moe: Some(MoeSpec {
            num_experts: experts,
            top_k,
            num_shared_experts: shared,
            expert_ffn_hidden_size: expert_ffn,
            shared_expert_ffn_hidden_size: expert_ffn,
            first_dense_layers: first_dense,
        }),
        ..dense
    }
}

/// Names accepted by [`model_preset`].
pub const MODEL_PRESETS: &[&str] = &[
    "gpt3-175b",
    "gpt-22b",
    "mt-nlg-530b",
    "gpt-1t",
    "llama2-7b",
    "llama2-13b",
    "llama2-70b",
    "llama3-8b",
    "llama3-70b",
    "llama3-405b",
    "nemotron4-340b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "gpt-oss-120b",
    "deepseek-v3",
];

/// Looks up a model preset by name (case-insensitive).
pub fn model_preset(name: &str) -> Option<TransformerSpec> {
    use FfnType::*;
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        // GPT-3 (Brown et al. 2020): 175B, GPT-2 BPE vocabulary 50,257, tied embeddings.
        "gpt3-175b" => m("gpt3-175b", 96, 12288, 96, 96, 49152, Gelu, 50257, true, 175.0),
        // Korthikanti et al. 2022 study models (vocabulary 51,200, padded).
        "gpt-22b" => m("gpt-22b", 48, 6144, 64, 64, 24576, Gelu, 51200, true, 22.0),
        "mt-nlg-530b" => m("mt-nlg-530b", 105, 20480, 128, 128, 81920, Gelu, 51200, true, 530.0),
        "gpt-1t" => m("gpt-1t", 128, 25600, 160, 160, 102400, Gelu, 51200, true, 1008.0),
        "llama2-7b" => m("llama2-7b", 32, 4096, 32, 32, 11008, Swiglu, 32000, false, 6.74),
        "llama2-13b" => m("llama2-13b", 40, 5120, 40, 40, 13824, Swiglu, 32000, false, 13.02),
        "llama2-70b" => m("llama2-70b", 80, 8192, 64, 8, 28672, Swiglu, 32000, false, 68.98),
        "llama3-8b" => m("llama3-8b", 32, 4096, 32, 8, 14336, Swiglu, 128256, false, 8.03),
        "llama3-70b" => m("llama3-70b", 80, 8192, 64, 8, 28672, Swiglu, 128256, false, 70.55),
        "llama3-405b" => m("llama3-405b", 126, 16384, 128, 8, 53248, Swiglu, 128256, false, 405.85),
        // Nemotron-4 340B: head_dim 192, squared-ReLU MLP, 256k vocabulary, untied.
        "nemotron4-340b" => m(
            "nemotron4-340b",
            96,
            18432,
            96,
            8,
            73728,
            SquaredRelu,
            256000,
            false,
            341.0,
        ),
        // Mixtral (Mistral AI 2024): 8 experts, top-2, every layer sparse; 46.7 B and 141 B total.
        "mixtral-8x7b" => moe(
            m("mixtral-8x7b", 32, 4096, 32, 8, 14336, Swiglu, 32000, false, 46.7),
            8,
            2,
            0,
            14336,
            0,
        ),
        "mixtral-8x22b" => moe(
            m("mixtral-8x22b", 56, 6144, 48, 8, 16384, Swiglu, 32768, false, 140.6),
            8,
            2,
            0,
            16384,
            0,
        ),
        // Qwen3 MoE (Megatron-Bridge providers, published-runs.md): 128 experts, top-8,
        // head_dim 128 independent of the width.
        "qwen3-30b-a3b" => moe(
            TransformerSpec {
                head_dim: 128,
                ..m("qwen3-30b-a3b", 48, 2048, 32, 4, 6144, Swiglu, 151936, false, 30.5)
            },
            128,
            8,
            0,
            768,
            0,
        ),
        "qwen3-235b-a22b" => moe(
            TransformerSpec {
                head_dim: 128,
                ..m("qwen3-235b-a22b", 94, 4096, 64, 4, 12288, Swiglu, 151936, false, 235.0)
            },
            128,
            8,
            0,
            1536,
            0,
        ),
        // GPT-OSS-120B: 128 experts, top-4, head_dim 64 (attention sinks and the sliding
        // window are not modelled; the window only shortens half the layers' attention).
        "gpt-oss-120b" => moe(
            TransformerSpec {
                head_dim: 64,
                ..m("gpt-oss-120b", 36, 2880, 64, 8, 2880, Swiglu, 201088, false, 116.8)
            },
            128,
            4,
            0,
            2880,
            0,
        ),
        // DeepSeek-V3 (tech report Sec. 4.2, config_671B.json): MLA, 3 dense layers of FFN
        // 18,432, then 58 MoE layers of 256 routed experts (top-8) + 1 shared, width 2,048.
        // 671 B without the multi-token-prediction module.
        "deepseek-v3" => moe(
            TransformerSpec {
                head_dim: 128,
                attention: Attention::Mla {
                    q_lora_rank: 1536,
                    kv_lora_rank: 512,
                    qk_nope_head_dim: 128,
                    qk_rope_head_dim: 64,
                    v_head_dim: 128,
                },
                ..m("deepseek-v3", 61, 7168, 128, 128, 18432, Swiglu, 129280, false, 671.0)
            },
            256,
            8,
            1,
            2048,
            3,
        ),
        _ => return None,
    })
}
