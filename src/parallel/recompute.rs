//! Which modules selective recomputation reruns (Megatron's `--recompute-modules`): owns
//! [`RecomputeModule`] and the set [`RecomputeModules`]. What each rerun costs is the
//! workload's (`workload::passes::recompute`), what each saves the memory model's
//! (`workload::memory`).

use serde::{Deserialize, Serialize};

/// A module selective recomputation can rerun before the backward instead of keeping its
/// activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecomputeModule {
    /// The attention core (scores, softmax, weighted sum): saves the score matrix of
    /// unfused attention (Korthikanti et al. 2022); nothing under flash attention.
    CoreAttn,
    /// MLA's query and key/value up-projections: keeps the latents, saves Q, K and V.
    MlaUpProj,
    /// The pre-attention and pre-MLP norms: saves their outputs (the QKV and MLP inputs).
    Layernorm,
    /// The MoE experts' activation (routed and shared): keeps its input, saves its output
    /// (the down-projection input).
    MoeAct,
    /// A dense layer's whole MLP: keeps its input, saves the activation's input and output.
    Mlp,
    /// A MoE layer's whole MoE block (router, all-to-alls, experts, shared experts): keeps
    /// its input, saves every routed and shared tensor.
    Moe,
    /// The shared experts: saves their tensors.
    SharedExperts,
}

impl RecomputeModule {
    /// Every module, in [`RecomputeModule::NAMES`] order.
    pub const ALL: [RecomputeModule; 7] = [
        RecomputeModule::CoreAttn,
        RecomputeModule::MlaUpProj,
        RecomputeModule::Layernorm,
        RecomputeModule::MoeAct,
        RecomputeModule::Mlp,
        RecomputeModule::Moe,
        RecomputeModule::SharedExperts,
    ];
    /// Names accepted in scenario files (Megatron's).
    pub const NAMES: &'static [&'static str] = &[
        "core_attn",
        "mla_up_proj",
        "layernorm",
        "moe_act",
        "mlp",
        "moe",
        "shared_experts",
    ];

    fn bit(self) -> u8 {
        1 << Self::ALL.iter().position(|&m| m == self).unwrap_or(0)
    }

    /// Its scenario-file name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self.bit().trailing_zeros() as usize]
    }
}

/// A set of [`RecomputeModule`]s; the default is Megatron's, the attention core alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct RecomputeModules(u8);

impl Default for RecomputeModules {
    fn default() -> Self {
        RecomputeModules::of(&[RecomputeModule::CoreAttn])
    }
}

impl RecomputeModules {
    /// The set of `modules`.
    pub fn of(modules: &[RecomputeModule]) -> Self {
        RecomputeModules(modules.iter().fold(0, |a, m| a | m.bit()))
    }

    /// Whether `m` is in the set.
    pub fn has(self, m: RecomputeModule) -> bool {
        self.0 & m.bit() != 0
    }

    /// The modules in the set, in [`RecomputeModule::ALL`] order.
    pub fn modules(self) -> Vec<RecomputeModule> {
        RecomputeModule::ALL.into_iter().filter(|&m| self.has(m)).collect()
    }

    /// Whether this is the default set.
    pub fn is_default(&self) -> bool {
        *self == RecomputeModules::default()
    }

    /// Comma-separated names, e.g. `layernorm,mla_up_proj,moe_act`.
    pub fn label(self) -> String {
        self.modules().iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
    }
}

impl From<RecomputeModules> for Vec<String> {
    fn from(s: RecomputeModules) -> Self {
        s.modules().iter().map(|m| m.name().to_string()).collect()
    }
}

impl TryFrom<Vec<String>> for RecomputeModules {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<Self, String> {
        let mut out = Vec::new();
        for n in &v {
            let i = RecomputeModule::NAMES
                .iter()
                .position(|x| x == n)
                .ok_or_else(|| format!("unknown recompute module \"{n}\""))?;
            out.push(RecomputeModule::ALL[i]);
        }
        Ok(RecomputeModules::of(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_through_their_names() {
        let s = RecomputeModules::of(&[RecomputeModule::Layernorm, RecomputeModule::MoeAct]);
        assert!(s.has(RecomputeModule::MoeAct) && !s.has(RecomputeModule::CoreAttn));
        assert_eq!(s.label(), "layernorm,moe_act");
        let names: Vec<String> = s.into();
        assert_eq!(RecomputeModules::try_from(names), Ok(s));
        assert!(RecomputeModules::default().has(RecomputeModule::CoreAttn));
        for m in RecomputeModule::ALL {
            assert_eq!(
                RecomputeModule::NAMES[RecomputeModule::ALL.iter().position(|&x| x == m).unwrap()],
                m.name()
            );
        }
    }
}
