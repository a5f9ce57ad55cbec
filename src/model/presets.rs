//! Model presets with their published parameter totals (sources in
//! `shared/validation/published-runs.md`, "Model architectures used above").

use super::{FfnType, TransformerSpec};

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
        _ => return None,
    })
}
