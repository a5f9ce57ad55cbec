//! Scenario files: TOML in, a typed, validated [`Scenario`] out.
//!
//! Parsing happens once, at the edge: [`raw`] mirrors the file with serde (unknown keys
//! rejected), then [`Scenario::from_source`] resolves presets, applies defaults, checks
//! every value and the plan's feasibility, and reports the first problem with its file,
//! line, column, field, value and what is allowed.

pub mod error;
mod goal;
mod pipeline;
pub mod raw;

pub use error::ScenarioError;

use crate::hardware::presets::{gpu_preset, GPU_PRESETS};
use crate::hardware::{ClusterSpec, GpuSpec, Precision};
use crate::model::presets::{model_preset, MODEL_PRESETS};
use crate::model::{Attention, FfnType, MoeSpec, TransformerSpec};
use crate::simulation::RunInput;
use crate::training::TrainingSpec;
use crate::workload::routing::{Dispatcher, Routing, RoutingSpec};
use raw::RawScenario;
use std::path::{Path, PathBuf};

/// A measured result that comes with a scenario, for `trainsim validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Measured step (iteration) time, s.
    pub step_time_s: Option<f64>,
    /// Measured throughput per GPU, tokens/s.
    pub tokens_per_s_per_gpu: Option<f64>,
    /// Where the figure comes from.
    pub source: String,
    /// Identifier in the source data set.
    pub id: String,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// File it came from.
    pub path: PathBuf,
    /// Description.
    pub description: String,
    /// Everything the simulation needs.
    pub input: RunInput,
    /// Measured result, if the file carries one.
    pub measured: Option<Measured>,
}

/// Default seed of every random stream.
pub const DEFAULT_SEED: u64 = 42;

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Scenario::from_source(&src, path)
    }

    /// Validates a scenario given as a TOML table (sweep points); `path` names it in messages.
    pub fn from_table(table: &toml::Table, path: &Path) -> Result<Scenario, ScenarioError> {
        let src = toml::to_string(table).map_err(|e| ScenarioError::Plan {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Scenario::from_source(&src, path)
    }

    /// Validates scenario text; `path` is used in messages and for the default name.
    pub fn from_source(src: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(src).map_err(|e| parse_error(src, path, &e))?;
        Checker { src, path }.convert(raw)
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

fn parse_error(src: &str, path: &Path, e: &toml::de::Error) -> ScenarioError {
    let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((1, 1));
    let snippet = src.lines().nth(line - 1).unwrap_or("").to_string();
    let mut message = e.message().trim().to_string();
    if message.starts_with("unknown field") {
        message.push_str(" (see docs/scenario.md for every field)");
    }
    if message.contains("expected u32") || message.contains("expected u64") {
        message.push_str(" (a non-negative whole number is required here)");
    }
    ScenarioError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
        snippet,
    }
}

struct Checker<'a> {
    src: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    /// ":line:column" of `key` inside `[section]`, when it can be found.
    fn locate(&self, field: &str) -> String {
        let (section, key) = match field.rfind('.') {
            Some(i) => (&field[..i], &field[i + 1..]),
            None => ("", field),
        };
        let mut in_section = section.is_empty();
        for (i, line) in self.src.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_section = t.trim_matches(|c| c == '[' || c == ']').trim() == section;
                continue;
            }
            if in_section {
                if let Some(rest) = t.strip_prefix(key) {
                    if rest.trim_start().starts_with('=') {
                        let col = line.find(key).unwrap_or(0) + 1;
                        return format!(":{}:{}", i + 1, col);
                    }
                }
            }
        }
        String::new()
    }

    fn invalid(&self, field: &str, value: impl ToString, allowed: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            location: self.locate(field),
            field: field.to_string(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    fn positive(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a positive number"))
        }
    }

    fn non_negative(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be zero or a positive number"))
        }
    }

    fn fraction(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 && v <= 1.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a fraction in (0, 1]"))
        }
    }

    fn at_least_one_ratio(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 1.0 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be a ratio of at least 1 (1 = non-blocking, 4 = 4:1)"))
        }
    }

    fn at_least_one(&self, field: &str, v: u32) -> Result<u32, ScenarioError> {
        if v >= 1 {
            Ok(v)
        } else {
            Err(self.invalid(field, v, "must be at least 1"))
        }
    }

    fn choice<T: Copy>(&self, field: &str, v: &str, names: &[&str], values: &[T]) -> Result<T, ScenarioError> {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(v))
            .map(|i| values[i])
            .ok_or_else(|| {
                self.invalid(
                    field,
                    format!("\"{v}\""),
                    format!("allowed values are {}", quote_list(names)),
                )
            })
    }

    fn gpu(&self, g: &raw::RawGpu) -> Result<GpuSpec, ScenarioError> {
        let mut spec = match &g.preset {
            Some(name) => gpu_preset(name).ok_or_else(|| {
                self.invalid(
                    "cluster.gpu.preset",
                    format!("\"{name}\""),
                    format!("known GPU presets are {}", quote_list(GPU_PRESETS)),
                )
            })?,
            None => {
                let need = |v: Option<f64>, f: &str| {
                    v.ok_or_else(|| {
                        self.invalid(
                            &format!("cluster.gpu.{f}"),
                            "(missing)",
                            "required when cluster.gpu.preset is not set",
                        )
                    })
                };
                let hopper = gpu_preset("H100-SXM").expect("preset exists");
                GpuSpec {
                    name: "custom".into(),
                    peak_bf16_tflops: need(g.peak_bf16_tflops, "peak_bf16_tflops")?,
                    peak_fp8_tflops: g.peak_fp8_tflops.unwrap_or(0.0),
                    hbm_capacity_gib: need(g.hbm_capacity_gib, "hbm_capacity_gib")?,
                    hbm_bandwidth_gbyte_per_s: need(g.hbm_bandwidth_gbyte_per_s, "hbm_bandwidth_gbyte_per_s")?,
                    scale_up_gbyte_per_s: need(g.scale_up_gbyte_per_s, "scale_up_gbyte_per_s")?,
                    ..hopper
                }
            }
        };
        let f = |field: &str| format!("cluster.gpu.{field}");
        macro_rules! set {
            ($name:ident, $check:ident) => {
                if let Some(v) = g.$name {
                    spec.$name = self.$check(&f(stringify!($name)), v)?;
                }
            };
        }
        set!(peak_bf16_tflops, positive);
        set!(peak_fp8_tflops, non_negative);
        set!(hbm_capacity_gib, positive);
        set!(hbm_bandwidth_gbyte_per_s, positive);
        set!(scale_up_gbyte_per_s, positive);
        set!(tdp_w, positive);
        set!(gemm_efficiency, fraction);
        set!(gemm_half_efficiency_dim, non_negative);
        set!(fp8_gemm_efficiency, fraction);
        set!(attention_fwd_efficiency, fraction);
        set!(attention_bwd_efficiency, fraction);
        set!(memory_efficiency, fraction);
        set!(kernel_overhead_us, non_negative);
        set!(grouped_gemm_efficiency, fraction);
        if let Some(v) = g.sm_count {
            spec.sm_count = self.at_least_one(&f("sm_count"), v)?;
        }
        Ok(spec)
    }

    fn model(&self, r: &raw::RawModel) -> Result<TransformerSpec, ScenarioError> {
        let base = match &r.preset {
            Some(name) => Some(model_preset(name).ok_or_else(|| {
                self.invalid(
                    "model.preset",
                    format!("\"{name}\""),
                    format!("known model presets are {}", quote_list(MODEL_PRESETS)),
                )
            })?),
            None => None,
        };
        let need_u32 = |v: Option<u32>, from: Option<u32>, f: &str| -> Result<u32, ScenarioError> {
            let v = v.or(from).ok_or_else(|| {
                self.invalid(
                    &format!("model.{f}"),
                    "(missing)",
                    "required when model.preset is not set",
                )
            })?;
            self.at_least_one(&format!("model.{f}"), v)
        };
        let b = base.as_ref();
        let num_layers = need_u32(r.num_layers, b.map(|m| m.num_layers), "num_layers")?;
        let hidden_size = need_u32(r.hidden_size, b.map(|m| m.hidden_size), "hidden_size")?;
        let num_heads = need_u32(r.num_heads, b.map(|m| m.num_heads), "num_heads")?;
        let num_kv_heads = match r.num_kv_heads.or(b.map(|m| m.num_kv_heads)) {
            Some(v) => self.at_least_one("model.num_kv_heads", v)?,
            None => num_heads,
        };
        if num_heads % num_kv_heads != 0 {
            return Err(self.invalid(
                "model.num_kv_heads",
                num_kv_heads,
                format!("must divide num_heads = {num_heads}"),
            ));
        }
        let head_dim = match r.head_dim.or(if r.hidden_size.is_some() || r.num_heads.is_some() {
            None
        } else {
            b.map(|m| m.head_dim)
        }) {
            Some(v) => self.at_least_one("model.head_dim", v)?,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(self.invalid(
                        "model.num_heads",
                        num_heads,
                        format!("must divide hidden_size = {hidden_size}, or set model.head_dim"),
                    ));
                }
                hidden_size / num_heads
            }
        };
        let ffn_hidden_size = need_u32(r.ffn_hidden_size, b.map(|m| m.ffn_hidden_size), "ffn_hidden_size")?;
        let ffn_type = match &r.ffn_type {
            Some(s) => self.choice(
                "model.ffn_type",
                s,
                FfnType::NAMES,
                &[FfnType::Gelu, FfnType::Relu, FfnType::SquaredRelu, FfnType::Swiglu],
            )?,
            None => b.map(|m| m.ffn_type).unwrap_or(FfnType::Gelu),
        };
        let vocab_size = need_u32(r.vocab_size, b.map(|m| m.vocab_size), "vocab_size")?;
        let tied_embeddings = r.tied_embeddings.or(b.map(|m| m.tied_embeddings)).unwrap_or(false);
        let custom = base.is_none()
            || r.num_layers.is_some()
            || r.hidden_size.is_some()
            || r.ffn_hidden_size.is_some()
            || r.num_heads.is_some()
            || r.vocab_size.is_some();
        let attention = self.attention(r, b)?;
        let moe = self.moe_arch(r, b, ffn_hidden_size, num_layers)?;
        Ok(TransformerSpec {
            attention,
            moe,
            name: r
                .name
                .clone()
                .or(b.map(|m| m.name.clone()))
                .unwrap_or_else(|| "custom".into()),
            num_layers,
            hidden_size,
            num_heads,
            num_kv_heads,
            head_dim,
            ffn_hidden_size,
            ffn_type,
            vocab_size,
            tied_embeddings,
            published_params_b: if custom {
                0.0
            } else {
                b.map(|m| m.published_params_b).unwrap_or(0.0)
            },
        })
    }

    fn attention(&self, r: &raw::RawModel, b: Option<&TransformerSpec>) -> Result<Attention, ScenarioError> {
        let mla_fields = [
            r.q_lora_rank,
            r.kv_lora_rank,
            r.qk_nope_head_dim,
            r.qk_rope_head_dim,
            r.v_head_dim,
        ];
        let kind = match &r.attention {
            Some(s) => self.choice("model.attention", s, Attention::NAMES, &[false, true])?,
            None => match b.map(|m| m.attention) {
                Some(Attention::Mla { .. }) => true,
                _ => mla_fields.iter().any(|f| f.is_some()),
            },
        };
        if !kind {
            if let Some(i) = mla_fields.iter().position(|f| f.is_some()) {
                let names = [
                    "q_lora_rank",
                    "kv_lora_rank",
                    "qk_nope_head_dim",
                    "qk_rope_head_dim",
                    "v_head_dim",
                ];
                return Err(self.invalid(
                    &format!("model.{}", names[i]),
                    mla_fields[i].unwrap_or(0),
                    "only applies with model.attention = \"mla\"",
                ));
            }
            return Ok(Attention::Standard);
        }
        let base = match b.map(|m| m.attention) {
            Some(Attention::Mla {
                q_lora_rank,
                kv_lora_rank,
                qk_nope_head_dim,
                qk_rope_head_dim,
                v_head_dim,
            }) => [
                q_lora_rank,
                kv_lora_rank,
                qk_nope_head_dim,
                qk_rope_head_dim,
                v_head_dim,
            ],
            _ => [0, 0, 0, 0, 0],
        };
        let need = |v: Option<u32>, base: u32, f: &str, zero_ok: bool| -> Result<u32, ScenarioError> {
            let v = v.unwrap_or(base);
            if v == 0 && !zero_ok {
                return Err(self.invalid(
                    &format!("model.{f}"),
                    if base == 0 {
                        "(missing)".to_string()
                    } else {
                        v.to_string()
                    },
                    "required (at least 1) with model.attention = \"mla\"",
                ));
            }
            Ok(v)
        };
        Ok(Attention::Mla {
            q_lora_rank: need(r.q_lora_rank, base[0], "q_lora_rank", true)?,
            kv_lora_rank: need(r.kv_lora_rank, base[1], "kv_lora_rank", false)?,
            qk_nope_head_dim: need(r.qk_nope_head_dim, base[2], "qk_nope_head_dim", false)?,
            qk_rope_head_dim: need(r.qk_rope_head_dim, base[3], "qk_rope_head_dim", true)?,
            v_head_dim: need(r.v_head_dim, base[4], "v_head_dim", false)?,
        })
    }

    fn moe_arch(
        &self,
        r: &raw::RawModel,
        b: Option<&TransformerSpec>,
        ffn_hidden_size: u32,
        num_layers: u32,
    ) -> Result<Option<MoeSpec>, ScenarioError> {
        let base = b.and_then(|m| m.moe.clone());
        let given = r.num_experts.is_some()
            || r.top_k.is_some()
            || r.num_shared_experts.is_some()
            || r.expert_ffn_hidden_size.is_some()
            || r.shared_expert_ffn_hidden_size.is_some()
            || r.first_dense_layers.is_some();
        if base.is_none() && !given {
            return Ok(None);
        }
        let num_experts = match r.num_experts.or(base.as_ref().map(|m| m.num_experts)) {
            Some(v) => self.at_least_one("model.num_experts", v)?,
            None => {
                return Err(self.invalid(
                    "model.num_experts",
                    "(missing)",
                    "required for a Mixture-of-Experts model (any of top_k, expert_ffn_hidden_size, ... was set)",
                ))
            }
        };
        let top_k = self.at_least_one("model.top_k", r.top_k.or(base.as_ref().map(|m| m.top_k)).unwrap_or(1))?;
        if top_k > num_experts {
            return Err(self.invalid(
                "model.top_k",
                top_k,
                format!("must be at most num_experts = {num_experts}"),
            ));
        }
        let expert_ffn = self.at_least_one(
            "model.expert_ffn_hidden_size",
            r.expert_ffn_hidden_size
                .or(base.as_ref().map(|m| m.expert_ffn_hidden_size))
                .unwrap_or(ffn_hidden_size),
        )?;
        let first_dense = r
            .first_dense_layers
            .or(base.as_ref().map(|m| m.first_dense_layers))
            .unwrap_or(0);
        if first_dense >= num_layers {
            return Err(self.invalid(
                "model.first_dense_layers",
                first_dense,
                format!("must be below num_layers = {num_layers} (at least one MoE layer)"),
            ));
        }
        Ok(Some(MoeSpec {
            num_experts,
            top_k,
            num_shared_experts: r
                .num_shared_experts
                .or(base.as_ref().map(|m| m.num_shared_experts))
                .unwrap_or(0),
            expert_ffn_hidden_size: expert_ffn,
            shared_expert_ffn_hidden_size: self.at_least_one(
                "model.shared_expert_ffn_hidden_size",
                r.shared_expert_ffn_hidden_size
                    .or(base.as_ref().map(|m| m.shared_expert_ffn_hidden_size))
                    .unwrap_or(expert_ffn),
            )?,
            first_dense_layers: first_dense,
        }))
    }

    fn routing(&self, m: Option<&raw::RawMoe>, model: &TransformerSpec) -> Result<RoutingSpec, ScenarioError> {
        let Some(m) = m else {
            return Ok(RoutingSpec::default());
        };
        let Some(moe) = &model.moe else {
            return Err(self.invalid(
                "moe",
                "[moe]",
                "only applies to Mixture-of-Experts models (set model.num_experts or a MoE preset)",
            ));
        };
        let name = m.routing.clone().unwrap_or_else(|| "balanced".into());
        let idx = self.choice("moe.routing", &name, Routing::NAMES, &[0usize, 1, 2, 3, 4, 5, 6])?;
        // parameters that belong to another distribution are mistakes, not silently ignored
        let owners: [(&str, bool, &[usize]); 7] = [
            ("dirichlet_alpha", m.dirichlet_alpha.is_some(), &[1]),
            ("zipf_exponent", m.zipf_exponent.is_some(), &[2]),
            ("lognormal_sigma", m.lognormal_sigma.is_some(), &[3]),
            ("hot_experts", m.hot_experts.is_some(), &[4, 5]),
            ("hot_fraction", m.hot_fraction.is_some(), &[4, 5]),
            ("rotate_every_steps", m.rotate_every_steps.is_some(), &[5]),
            ("loads_csv", m.loads_csv.is_some(), &[6]),
        ];
        for (field, set, kinds) in owners {
            if set && !kinds.contains(&idx) {
                let wanted: Vec<&str> = kinds.iter().map(|&k| Routing::NAMES[k]).collect();
                return Err(self.invalid(
                    &format!("moe.{field}"),
                    format!("(with routing = \"{name}\")"),
                    format!("only applies with moe.routing = {}", quote_list(&wanted)),
                ));
            }
        }
        let hot = |this: &Self| -> Result<(u32, f64), ScenarioError> {
            let k = this.at_least_one("moe.hot_experts", m.hot_experts.unwrap_or(1))?;
            if k > moe.num_experts {
                return Err(this.invalid(
                    "moe.hot_experts",
                    k,
                    format!("must be at most model.num_experts = {}", moe.num_experts),
                ));
            }
            let f = m.hot_fraction.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&f) || !f.is_finite() {
                return Err(this.invalid("moe.hot_fraction", f, "must be a probability in [0, 1]"));
            }
            Ok((k, f))
        };
        let routing = match idx {
            0 => Routing::Balanced,
            1 => Routing::Dirichlet {
                alpha: self.positive("moe.dirichlet_alpha", m.dirichlet_alpha.unwrap_or(1.0))?,
            },
            2 => Routing::Zipf {
                exponent: self.non_negative("moe.zipf_exponent", m.zipf_exponent.unwrap_or(1.0))?,
            },
            3 => Routing::LogNormal {
                sigma: self.non_negative("moe.lognormal_sigma", m.lognormal_sigma.unwrap_or(0.5))?,
            },
            4 => {
                let (experts, fraction) = hot(self)?;
                Routing::HotSet { experts, fraction }
            }
            5 => {
                let (experts, fraction) = hot(self)?;
                Routing::Rotating {
                    experts,
                    fraction,
                    every_steps: self.at_least_one("moe.rotate_every_steps", m.rotate_every_steps.unwrap_or(1))?,
                }
            }
            _ => {
                let Some(rel) = &m.loads_csv else {
                    return Err(self.invalid(
                        "moe.loads_csv",
                        "(missing)",
                        "required with moe.routing = \"csv\": a file of per-expert loads, one row per step and layer",
                    ));
                };
                let path = self.path.parent().unwrap_or(Path::new(".")).join(rel);
                Routing::Replay {
                    rows: self.load_csv(&path, moe.num_experts)?,
                }
            }
        };
        let capacity_factor = match m.capacity_factor {
            None => None,
            Some(v) if v.is_finite() && v >= 1.0 => Some(v),
            Some(v) => {
                return Err(self.invalid(
                    "moe.capacity_factor",
                    v,
                    "must be at least 1 (each expert keeps at least its fair share); omit it for dropless routing",
                ))
            }
        };
        let dispatcher = match &m.dispatcher {
            Some(s) => self.choice(
                "moe.dispatcher",
                s,
                Dispatcher::NAMES,
                &[Dispatcher::Direct, Dispatcher::Hierarchical],
            )?,
            None => Dispatcher::Direct,
        };
        Ok(RoutingSpec {
            routing,
            capacity_factor,
            dispatcher,
        })
    }

    /// Per-expert relative loads, one row per line: `num_experts` non-negative numbers
    /// separated by commas; `#` comments, blank lines and a non-numeric header are skipped.
    fn load_csv(&self, path: &Path, experts: u32) -> Result<Vec<Vec<f64>>, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            self.invalid(
                "moe.loads_csv",
                format!("\"{}\"", path.display()),
                format!("could not be read ({e})"),
            )
        })?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let parsed: Result<Vec<f64>, _> = cells.iter().map(|c| c.parse::<f64>()).collect();
            let Ok(v) = parsed else {
                if rows.is_empty() && i == 0 {
                    continue; // header
                }
                return Err(self.invalid(
                    "moe.loads_csv",
                    format!("\"{}\" line {}", path.display(), i + 1),
                    "every cell must be a number (relative expert load)",
                ));
            };
            if v.len() != experts as usize || v.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(self.invalid(
                    "moe.loads_csv",
                    format!("\"{}\" line {} ({} values)", path.display(), i + 1, v.len()),
                    format!("each row needs model.num_experts = {experts} non-negative numbers"),
                ));
            }
            rows.push(v);
        }
        if rows.is_empty() {
            return Err(self.invalid(
                "moe.loads_csv",
                format!("\"{}\"", path.display()),
                "holds no rows of expert loads",
            ));
        }
        Ok(rows)
    }

    fn topology(&self, n: &raw::RawNetwork) -> Result<crate::hardware::cluster::TopologySpec, ScenarioError> {
        let mut t = crate::hardware::cluster::TopologySpec::default();
        if let Some(v) = n.scale_up_domain {
            t.scale_up_domain = self.at_least_one("cluster.network.scale_up_domain", v)?;
        }
        if let Some(v) = n.fat_tree_tiers {
            if v != 2 && v != 3 {
                return Err(self.invalid(
                    "cluster.network.fat_tree_tiers",
                    v,
                    "allowed values are 2 (leaf-spine) and 3 (leaf-spine-core)",
                ));
            }
            t.fat_tree_tiers = v;
        }
        if let Some(v) = n.leaves_per_pod {
            t.leaves_per_pod = self.at_least_one("cluster.network.leaves_per_pod", v)?;
        }
        if let Some(v) = n.core_oversubscription {
            t.core_oversubscription = self.at_least_one_ratio("cluster.network.core_oversubscription", v)?;
        }
        if let Some(v) = n.rail_optimized {
            t.rail_optimized = v;
        }
        if let Some(v) = n.switch_latency_us {
            t.switch_latency_us = self.non_negative("cluster.network.switch_latency_us", v)?;
        }
        Ok(t)
    }

    fn algorithms(&self, n: &raw::RawNetwork) -> Result<crate::network::algorithm::AlgorithmChoice, ScenarioError> {
        use crate::network::algorithm::{Algorithm, AlgorithmChoice};
        let mut c = AlgorithmChoice::default();
        let allowed: [(&str, &[Algorithm]); 3] = [
            (
                "all_reduce_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Tree,
                    Algorithm::Nvls,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "all_gather_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
            (
                "reduce_scatter_algorithm",
                &[
                    Algorithm::Auto,
                    Algorithm::Ring,
                    Algorithm::Hierarchical,
                    Algorithm::HalvingDoubling,
                ],
            ),
        ];
        for (i, (key, algos)) in allowed.iter().enumerate() {
            let given = [
                &n.all_reduce_algorithm,
                &n.all_gather_algorithm,
                &n.reduce_scatter_algorithm,
            ][i];
            if let Some(s) = given {
                let names: Vec<&str> = algos.iter().map(|a| a.name()).collect();
                let a = self.choice(&format!("cluster.network.{key}"), s, &names, algos)?;
                match i {
                    0 => c.all_reduce = a,
                    1 => c.all_gather = a,
                    _ => c.reduce_scatter = a,
                }
            }
        }
        Ok(c)
    }

    fn convert(&self, r: RawScenario) -> Result<Scenario, ScenarioError> {
        let gpu = self.gpu(&r.cluster.gpu)?;
        let num_gpus = self.at_least_one("cluster.num_gpus", r.cluster.num_gpus)?;
        let gpus_per_node = self.at_least_one("cluster.gpus_per_node", r.cluster.gpus_per_node.unwrap_or(8))?;
        if num_gpus > gpus_per_node && num_gpus % gpus_per_node != 0 {
            return Err(self.invalid(
                "cluster.num_gpus",
                num_gpus,
                format!("must be a multiple of gpus_per_node = {gpus_per_node} (whole nodes)"),
            ));
        }
        let n = r.cluster.network.unwrap_or_default();
        let default_nic = if gpu.name.starts_with("A100") { 200.0 } else { 400.0 };
        let cluster = ClusterSpec {
            num_gpus,
            gpus_per_node,
            nics_per_node: self.at_least_one(
                "cluster.network.nics_per_node",
                n.nics_per_node.unwrap_or(gpus_per_node),
            )?,
            nic_gbit_per_s: self.positive(
                "cluster.network.nic_gbit_per_s",
                n.nic_gbit_per_s.unwrap_or(default_nic),
            )?,
            scale_up_latency_us: self.non_negative(
                "cluster.network.scale_up_latency_us",
                n.scale_up_latency_us.unwrap_or(1.5),
            )?,
            scale_out_latency_us: self.non_negative(
                "cluster.network.scale_out_latency_us",
                n.scale_out_latency_us.unwrap_or(4.0),
            )?,
            scale_up_efficiency: self.fraction(
                "cluster.network.scale_up_efficiency",
                n.scale_up_efficiency.unwrap_or(0.8),
            )?,
            scale_out_efficiency: self.fraction(
                "cluster.network.scale_out_efficiency",
                n.scale_out_efficiency.unwrap_or(0.9),
            )?,
            oversubscription: self
                .at_least_one_ratio("cluster.network.oversubscription", n.oversubscription.unwrap_or(1.0))?,
            nodes_per_leaf: self.at_least_one(
                "cluster.network.nodes_per_leaf",
                n.nodes_per_leaf
                    .unwrap_or(crate::hardware::cluster::DEFAULT_NODES_PER_LEAF),
            )?,
            topology: self.topology(&n)?,
            gpu,
        };
        let collectives = self.algorithms(&n)?;
        let model = self.model(&r.model)?;

        let t = &r.training;
        let precision = match &t.precision {
            Some(s) => self.choice(
                "training.precision",
                s,
                Precision::NAMES,
                &[Precision::Bf16, Precision::Fp16, Precision::Fp8],
            )?,
            None => Precision::Bf16,
        };
        if precision == Precision::Fp8 && cluster.gpu.peak_fp8_tflops <= 0.0 {
            return Err(self.invalid(
                "training.precision",
                "\"fp8\"",
                format!(
                    "GPU {} has no FP8 tensor cores; use \"bf16\" or \"fp16\"",
                    cluster.gpu.name
                ),
            ));
        }
        let training = TrainingSpec {
            global_batch_size: self.at_least_one("training.global_batch_size", t.global_batch_size)?,
            seq_length: self.at_least_one("training.seq_length", t.seq_length)?,
            precision,
            flash_attention: t.flash_attention.unwrap_or(true),
        };

        let plan = self.plan(
            &r.parallel,
            r.moe.as_ref(),
            &model,
            (num_gpus, gpus_per_node),
            training.global_batch_size,
        )?;

        let goal = self.goal(r.target.as_ref(), r.reliability.as_ref(), r.energy.as_ref(), &model)?;
        let routing = self.routing(r.moe.as_ref(), &model)?;
        let sim = r.simulation.unwrap_or_default();
        let warmup_iterations = sim.warmup_iterations.unwrap_or(1);
        let iterations = self.at_least_one("simulation.iterations", sim.iterations.unwrap_or(3))?;
        if iterations <= warmup_iterations {
            return Err(self.invalid(
                "simulation.iterations",
                iterations,
                format!("must exceed simulation.warmup_iterations = {warmup_iterations}"),
            ));
        }
        let measured = match r.measured {
            Some(m) => {
                if let Some(v) = m.step_time_s {
                    self.positive("measured.step_time_s", v)?;
                }
                if let Some(v) = m.tokens_per_s_per_gpu {
                    self.positive("measured.tokens_per_s_per_gpu", v)?;
                }
                Some(Measured {
                    step_time_s: m.step_time_s,
                    tokens_per_s_per_gpu: m.tokens_per_s_per_gpu,
                    source: m.source.unwrap_or_default(),
                    id: m.id.unwrap_or_default(),
                })
            }
            None => None,
        };
        let name = r.name.unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        let stragglers = match r.stragglers {
            None => crate::simulation::stragglers::StragglerSpec::default(),
            Some(st) => {
                let spec = crate::simulation::stragglers::StragglerSpec {
                    slow_gpus: st.slow_gpus.unwrap_or(0),
                    slowdown_fraction: self
                        .non_negative("stragglers.slowdown_fraction", st.slowdown_fraction.unwrap_or(0.0))?,
                    step_jitter_fraction: self.non_negative(
                        "stragglers.step_jitter_fraction",
                        st.step_jitter_fraction.unwrap_or(0.0),
                    )?,
                };
                if spec.slow_gpus > num_gpus {
                    return Err(self.invalid(
                        "stragglers.slow_gpus",
                        spec.slow_gpus,
                        format!("must be at most cluster.num_gpus = {num_gpus}"),
                    ));
                }
                if spec.slow_gpus > 0 && spec.slowdown_fraction == 0.0 {
                    return Err(self.invalid(
                        "stragglers.slowdown_fraction",
                        0,
                        "must be positive when stragglers.slow_gpus > 0",
                    ));
                }
                spec
            }
        };
        Ok(Scenario {
            path: self.path.to_path_buf(),
            description: r.description.unwrap_or_default(),
            input: RunInput {
                name,
                seed: r.seed.unwrap_or(DEFAULT_SEED),
                cluster,
                model,
                plan,
                training,
                iterations,
                warmup_iterations,
                goal,
                stragglers,
                routing,
                collectives,
            },
            measured,
        })
    }
}

fn quote_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A DGX-H100-like cluster for unit tests elsewhere.
    pub(crate) fn test_cluster(num_gpus: u32, gpus_per_node: u32) -> ClusterSpec {
        ClusterSpec {
            gpu: gpu_preset("H100-SXM").unwrap(),
            num_gpus,
            gpus_per_node,
            nics_per_node: gpus_per_node,
            nic_gbit_per_s: 400.0,
            scale_up_latency_us: 1.5,
            scale_out_latency_us: 4.0,
            scale_up_efficiency: 0.8,
            scale_out_efficiency: 0.9,
            oversubscription: 1.0,
            nodes_per_leaf: 16,
            topology: Default::default(),
        }
    }

    const GOOD: &str = r#"
[cluster]
num_gpus = 64
[cluster.gpu]
preset = "H100-SXM"
[model]
preset = "llama3-8b"
[parallel]
tp = 2
pp = 2
[training]
global_batch_size = 64
seq_length = 4096
"#;

    fn err(src: &str) -> String {
        Scenario::from_source(src, Path::new("s.toml")).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_in_dp_sp_and_network() {
        let s = Scenario::from_source(GOOD, Path::new("dir/my-run.toml")).unwrap();
        assert_eq!(s.input.name, "my-run");
        assert_eq!(s.input.plan.dp, 16);
        assert!(s.input.plan.sequence_parallel);
        assert_eq!(s.input.cluster.nic_gbit_per_s, 400.0);
        assert_eq!(s.input.seed, DEFAULT_SEED);
    }

    #[test]
    fn errors_name_file_line_field_value_and_what_is_allowed() {
        let e = err(&GOOD.replace("tp = 2", "tp = 2\nrecompute = \"most\""));
        assert!(
            e.contains("s.toml:")
                && e.contains("parallel.recompute")
                && e.contains("\"most\"")
                && e.contains("\"selective\""),
            "{e}"
        );
        let e = err(&GOOD.replace("tp = 2", "tq = 2"));
        assert!(e.contains("s.toml:9:1") && e.contains("unknown field `tq`"), "{e}");
        let e = err(&GOOD.replace("num_gpus = 64", "num_gpus = -8"));
        assert!(e.contains("s.toml:3:") && e.contains("-8"), "{e}");
        let e = err(&GOOD.replace("tp = 2", "tp = 3"));
        assert!(e.contains("impossible plan") && e.contains("32 attention heads"), "{e}");
        let e = err(&GOOD.replace("\"llama3-8b\"", "\"llama9\""));
        assert!(e.contains("model.preset") && e.contains("\"llama3-70b\""), "{e}");
    }
}
