//! The `[moe]` section: token routing, capacity, dispatcher and replayed loads.
use super::check::{quote_list, Checker};
use super::{raw, ScenarioError};
use crate::model::TransformerSpec;
use crate::parallel::{Dim, ParallelPlan, Placement};
use crate::workload::routing::{Dispatcher, Routing, RoutingSpec};
use std::path::Path;

impl Checker<'_> {
    pub(super) fn routing(
        &self,
        m: Option<&raw::RawMoe>,
        model: &TransformerSpec,
        plan: &ParallelPlan,
        gpus_per_node: u32,
    ) -> Result<RoutingSpec, ScenarioError> {
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
        let owners: [(&str, Option<String>, &[usize]); 7] = [
            ("dirichlet_alpha", m.dirichlet_alpha.map(|v| v.to_string()), &[1]),
            ("zipf_exponent", m.zipf_exponent.map(|v| v.to_string()), &[2]),
            ("lognormal_sigma", m.lognormal_sigma.map(|v| v.to_string()), &[3]),
            ("hot_experts", m.hot_experts.map(|v| v.to_string()), &[4, 5]),
            ("hot_fraction", m.hot_fraction.map(|v| v.to_string()), &[4, 5]),
            ("rotate_every_steps", m.rotate_every_steps.map(|v| v.to_string()), &[5]),
            ("loads_csv", m.loads_csv.as_ref().map(|v| format!("{v:?}")), &[6]),
        ];
        for (field, value, kinds) in owners {
            if let Some(value) = value.filter(|_| !kinds.contains(&idx)) {
                let wanted: Vec<&str> = kinds.iter().map(|&k| Routing::NAMES[k]).collect();
                return Err(self.invalid(
                    &format!("moe.{field}"),
                    value,
                    format!(
                        "only applies with moe.routing = {} (this scenario's is \"{name}\"): remove it or change the routing",
                        quote_list(&wanted)
                    ),
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
            Some(s) => match Dispatcher::ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(s)) {
                Some(&(_, d)) => d,
                None => self.choice("moe.dispatcher", s, Dispatcher::NAMES, &Dispatcher::ALL)?,
            },
            None => Dispatcher::AllToAll,
        };
        if plan.expert_tp > 1 && dispatcher != Dispatcher::AllToAll {
            return Err(self.invalid(
                "moe.dispatcher",
                format!("\"{}\"", dispatcher.name()),
                format!(
                    "with parallel.expert_tp = {} only the \"alltoall\" dispatcher is modelled (all-to-all over EP, then all-gather and reduce-scatter over ETP); set expert_tp = 1 for the others",
                    plan.expert_tp
                ),
            ));
        }
        let node_limit = match m.node_limit {
            None => None,
            Some(limit) => {
                let limit = self.at_least_one("moe.node_limit", limit)?;
                let layout = Placement::megatron(plan, gpus_per_node).layout(Dim::Ep);
                let ep = plan.ep.max(1);
                let nodes = ep.div_ceil(layout.members_per_node.clamp(1, ep));
                if limit > nodes {
                    return Err(self.invalid(
                        "moe.node_limit",
                        limit,
                        format!(
                            "must be at most the nodes an expert-parallel group spans ({nodes}: parallel.ep = {ep}, {} of its ranks per node)",
                            layout.members_per_node.clamp(1, ep)
                        ),
                    ));
                }
                Some(limit)
            }
        };
        Ok(RoutingSpec {
            routing,
            capacity_factor,
            dispatcher,
            node_limit,
        })
    }

    /// Per-expert relative loads, one row per line: `num_experts` non-negative numbers
    /// separated by commas; `#` comments, blank lines and a non-numeric header are skipped.
    pub(super) fn load_csv(&self, path: &Path, experts: u32) -> Result<Vec<Vec<f64>>, ScenarioError> {
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
}
