//! The `[model]` section: a preset, its overrides or a custom architecture, with MLA
//! attention and Mixture-of-Experts fields.
use super::check::{quote_list, Checker};
use super::{fields, raw, ScenarioError};
use crate::model::presets::{model_preset, MODEL_PRESETS};
use crate::model::{Attention, FfnType, MoeSpec, TransformerSpec};
use std::path::Path;

impl Checker<'_> {
    /// The sizes a Hugging Face config gives, held to the same physical limits as the
    /// fields written in a scenario.
    fn hf_within_limits(&self, m: &TransformerSpec, rel: &str) -> Result<(), ScenarioError> {
        let mut fields = vec![
            ("num_layers", m.num_layers),
            ("hidden_size", m.hidden_size),
            ("num_heads", m.num_heads),
            ("num_kv_heads", m.num_kv_heads),
            ("head_dim", m.head_dim),
            ("ffn_hidden_size", m.ffn_hidden_size),
            ("vocab_size", m.vocab_size),
        ];
        if let Some(moe) = &m.moe {
            fields.extend([
                ("num_experts", moe.num_experts),
                ("top_k", moe.top_k),
                ("expert_ffn_hidden_size", moe.expert_ffn_hidden_size),
                ("first_dense_layers", moe.first_dense_layers),
            ]);
        }
        let model: toml::Table = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), toml::Value::Integer(i64::from(v))))
            .collect();
        let mut table = toml::Table::new();
        table.insert("model".into(), toml::Value::Table(model));
        match super::limits::first_violation(&table, super::limits::Ends::Both) {
            Some((l, value)) => Err(self.invalid(
                "model.hf_config",
                format!("\"{rel}\""),
                format!(
                    "it gives {} = {value}, which {}",
                    l.path,
                    super::limits::allowed_text(l)
                ),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn model(&self, r: &raw::RawModel) -> Result<TransformerSpec, ScenarioError> {
        let base = match (&r.preset, &r.hf_config) {
            (Some(_), Some(hf)) => {
                return Err(self.invalid(
                    "model.hf_config",
                    format!("\"{hf}\""),
                    "give model.preset or model.hf_config, not both (fields set beside either override it)",
                ))
            }
            (Some(name), None) => Some(model_preset(name).ok_or_else(|| {
                self.invalid(
                    "model.preset",
                    format!("\"{name}\""),
                    format!(
                        "{}known model presets are {}",
                        fields::did_you_mean(name, MODEL_PRESETS.iter().copied(), "\""),
                        quote_list(MODEL_PRESETS)
                    ),
                )
            })?),
            (None, Some(rel)) => {
                let file = self.path.parent().unwrap_or(Path::new("")).join(rel);
                let spec = crate::model::hf::load(&file)
                    .map_err(|e| self.invalid("model.hf_config", format!("\"{rel}\""), e))?;
                self.hf_within_limits(&spec, rel)?;
                Some(spec)
            }
            (None, None) => None,
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
        let mtp_modules = r.mtp_modules.or(b.map(|m| m.mtp_modules)).unwrap_or(0);
        Ok(TransformerSpec {
            attention,
            moe,
            mtp_modules,
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

    pub(super) fn attention(&self, r: &raw::RawModel, b: Option<&TransformerSpec>) -> Result<Attention, ScenarioError> {
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

    pub(super) fn moe_arch(
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
}
