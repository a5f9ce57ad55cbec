//! The page's files and the shipped scenarios offered as presets, compiled into the binary.

/// The page.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// Its script (no framework, no build step).
pub const APP_JS: &str = include_str!("assets/app.js");
/// Its style sheet.
pub const STYLE_CSS: &str = include_str!("assets/style.css");

/// Shipped scenarios offered in the preset menu: (name, TOML), the first is loaded first.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "gpt3-175b-a100-1024",
        include_str!("../../scenarios/gpt3-175b-a100-1024.toml"),
    ),
    (
        "llama3-8b-h100-64",
        include_str!("../../scenarios/llama3-8b-h100-64.toml"),
    ),
    (
        "llama3-405b-h100-16384",
        include_str!("../../scenarios/llama3-405b-h100-16384.toml"),
    ),
    (
        "llama3-405b-h100-16384-training",
        include_str!("../../scenarios/llama3-405b-h100-16384-training.toml"),
    ),
    (
        "mixtral-8x7b-h100-64",
        include_str!("../../scenarios/mixtral-8x7b-h100-64.toml"),
    ),
    (
        "deepseek-v3-h800-2048",
        include_str!("../../scenarios/deepseek-v3-h800-2048.toml"),
    ),
    (
        "bloom-176b-a100-384",
        include_str!("../../scenarios/bloom-176b-a100-384.toml"),
    ),
];
