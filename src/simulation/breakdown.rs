//! Where time goes: each instant of a rank's measured window is attributed to exactly one
//! category, by priority: compute (by phase) first, then exposed communication (TP, DP,
//! PP, synchronisation), else pipeline bubble (pp > 1) or idle. The categories therefore
//! sum to the window length.

use super::SimOutput;
use crate::units::SimTime;
use crate::workload::costs::Phase;
use crate::workload::{CommPurpose, Group, OpKind, Workload};
use serde::{Deserialize, Serialize};

/// Seconds per category for one rank over the measured iterations, divided by their count
/// (so the fields sum to the mean step time).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Forward compute, s.
    pub forward_s: f64,
    /// Backward compute, s.
    pub backward_s: f64,
    /// Recomputation, s.
    pub recompute_s: f64,
    /// Optimizer step, s.
    pub optimizer_s: f64,
    /// Tensor-parallel communication not hidden behind compute, s.
    pub exposed_tp_comm_s: f64,
    /// Data-parallel gradient reduction not hidden, s.
    pub exposed_dp_grad_comm_s: f64,
    /// Data-parallel parameter all-gather not hidden, s.
    pub exposed_dp_param_comm_s: f64,
    /// Pipeline point-to-point transfers not hidden, s.
    pub exposed_pp_comm_s: f64,
    /// MoE token all-to-all not hidden, s.
    #[serde(default)]
    pub exposed_ep_comm_s: f64,
    /// Waiting for the slowest expert-parallel rank after the experts (routing
    /// imbalance), s.
    #[serde(default)]
    pub moe_imbalance_s: f64,
    /// Cross-rank synchronisation (gradient-norm all-reduce), s.
    pub sync_s: f64,
    /// Pipeline bubble: idle while waiting on other stages, s.
    pub pipeline_bubble_s: f64,
    /// Other idle time, s.
    pub idle_s: f64,
    /// TP communication time including the hidden part, s.
    pub total_tp_comm_s: f64,
    /// DP communication time including the hidden part, s.
    pub total_dp_comm_s: f64,
    /// PP communication time including the hidden part, s.
    pub total_pp_comm_s: f64,
    /// MoE all-to-all time including any hidden part, s.
    #[serde(default)]
    pub total_ep_comm_s: f64,
}

impl Breakdown {
    /// Sum of the exclusive categories (equals the window per iteration).
    pub fn exclusive_total_s(&self) -> f64 {
        self.forward_s
            + self.backward_s
            + self.recompute_s
            + self.optimizer_s
            + self.exposed_tp_comm_s
            + self.exposed_dp_grad_comm_s
            + self.exposed_dp_param_comm_s
            + self.exposed_pp_comm_s
            + self.exposed_ep_comm_s
            + self.moe_imbalance_s
            + self.sync_s
            + self.pipeline_bubble_s
            + self.idle_s
    }

    /// Compute time of every phase, s.
    pub fn compute_s(&self) -> f64 {
        self.forward_s + self.backward_s + self.recompute_s + self.optimizer_s
    }

    /// (label, seconds) of the exclusive categories, for tables and charts.
    pub fn categories(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("forward", self.forward_s),
            ("backward", self.backward_s),
            ("recompute", self.recompute_s),
            ("optimizer", self.optimizer_s),
            ("exposed TP comm", self.exposed_tp_comm_s),
            ("exposed DP grad comm", self.exposed_dp_grad_comm_s),
            ("exposed DP param comm", self.exposed_dp_param_comm_s),
            ("exposed PP comm", self.exposed_pp_comm_s),
            ("exposed EP all-to-all", self.exposed_ep_comm_s),
            ("MoE imbalance wait", self.moe_imbalance_s),
            ("sync", self.sync_s),
            ("pipeline bubble", self.pipeline_bubble_s),
            ("idle", self.idle_s),
        ]
    }

    fn add_scaled(&mut self, o: &Breakdown, k: f64) {
        let a = [
            &mut self.forward_s,
            &mut self.backward_s,
            &mut self.recompute_s,
            &mut self.optimizer_s,
            &mut self.exposed_tp_comm_s,
            &mut self.exposed_dp_grad_comm_s,
            &mut self.exposed_dp_param_comm_s,
            &mut self.exposed_pp_comm_s,
            &mut self.exposed_ep_comm_s,
            &mut self.moe_imbalance_s,
            &mut self.sync_s,
            &mut self.pipeline_bubble_s,
            &mut self.idle_s,
            &mut self.total_tp_comm_s,
            &mut self.total_dp_comm_s,
            &mut self.total_pp_comm_s,
            &mut self.total_ep_comm_s,
        ];
        let b = [
            o.forward_s,
            o.backward_s,
            o.recompute_s,
            o.optimizer_s,
            o.exposed_tp_comm_s,
            o.exposed_dp_grad_comm_s,
            o.exposed_dp_param_comm_s,
            o.exposed_pp_comm_s,
            o.exposed_ep_comm_s,
            o.moe_imbalance_s,
            o.sync_s,
            o.pipeline_bubble_s,
            o.idle_s,
            o.total_tp_comm_s,
            o.total_dp_comm_s,
            o.total_pp_comm_s,
            o.total_ep_comm_s,
        ];
        for (x, y) in a.into_iter().zip(b) {
            *x += k * y;
        }
    }
}

/// Category index by priority (lower wins).
fn category(kind: &OpKind) -> Option<usize> {
    Some(match kind {
        OpKind::Compute { duration, phase, .. } => {
            if duration.as_ps() == 0 {
                return None;
            }
            match phase {
                Phase::Forward => 0,
                Phase::Backward => 1,
                Phase::Recompute => 2,
                Phase::Optimizer => 3,
            }
        }
        OpKind::Collective { group: Group::Tp, .. } => 4,
        OpKind::Collective {
            purpose: CommPurpose::Parameters,
            ..
        } => 6,
        OpKind::Collective { .. } => 5,
        OpKind::Send { .. } => 7,
        OpKind::AllToAll { .. } => 8,
        OpKind::Barrier { .. } => 10,
    })
}

/// Categories: 0-3 compute phases, 4 TP, 5 DP grad, 6 DP param, 7 PP, 8 EP all-to-all,
/// 9 MoE imbalance wait, 10 sync, then bubble (11) or idle (12) when nothing is active.
const N_ACTIVE: usize = 11;
const BUBBLE: usize = 11;
const IDLE: usize = 12;
const IMBALANCE: usize = 9;

/// Breakdown of every representative rank over `[from, to)`, per iteration in it.
pub fn per_rank(
    w: &Workload,
    out: &SimOutput,
    from: SimTime,
    to: SimTime,
    iterations: f64,
    pipeline: bool,
) -> Vec<Breakdown> {
    let n = w.stages as usize;
    let mut marks: Vec<Vec<(u64, i32, usize)>> = vec![Vec::new(); n];
    let mut totals = vec![[0.0f64; 4]; n];
    let mut mark = |r: usize, s: SimTime, e: SimTime, cat: usize| -> Option<f64> {
        let s = s.max(from);
        let e = e.min(to);
        if e <= s {
            return None;
        }
        marks[r].push((s.as_ps(), 1, cat));
        marks[r].push((e.as_ps(), -1, cat));
        Some((e - s).as_secs())
    };
    for (i, op) in w.ops.iter().enumerate() {
        let r = op.rank as usize;
        if r >= n {
            continue; // expert lanes: their wait shows on the representative
        }
        let Some(cat) = category(&op.kind) else {
            continue;
        };
        let (s, e) = out.op_times[i];
        if let OpKind::AllToAll { table } = op.kind {
            if let Some(prev) = w.all_to_alls[table as usize].wait_from {
                mark(r, out.op_times[prev as usize].1, s, IMBALANCE);
            }
        }
        let Some(d) = mark(r, s, e, cat) else {
            continue;
        };
        match cat {
            4 => totals[r][0] += d,
            5 | 6 => totals[r][1] += d,
            7 => totals[r][2] += d,
            8 => totals[r][3] += d,
            _ => {}
        }
    }
    let mut result = Vec::with_capacity(n);
    for (r, mut m) in marks.into_iter().enumerate() {
        m.sort_unstable();
        let mut active = [0i32; N_ACTIVE];
        let mut acc = [0.0f64; IDLE + 1];
        let mut t = from.as_ps();
        let mut i = 0;
        let end = to.as_ps();
        while t < end {
            while i < m.len() && m[i].0 <= t {
                active[m[i].2] += m[i].1;
                i += 1;
            }
            let next = if i < m.len() { m[i].0.min(end) } else { end };
            let dt = (next - t) as f64 / crate::units::PS_PER_S;
            let cat = active
                .iter()
                .position(|&a| a > 0)
                .unwrap_or(if pipeline { BUBBLE } else { IDLE });
            acc[cat] += dt;
            t = next;
        }
        let k = 1.0 / iterations;
        result.push(Breakdown {
            forward_s: acc[0] * k,
            backward_s: acc[1] * k,
            recompute_s: acc[2] * k,
            optimizer_s: acc[3] * k,
            exposed_tp_comm_s: acc[4] * k,
            exposed_dp_grad_comm_s: acc[5] * k,
            exposed_dp_param_comm_s: acc[6] * k,
            exposed_pp_comm_s: acc[7] * k,
            exposed_ep_comm_s: acc[8] * k,
            moe_imbalance_s: acc[IMBALANCE] * k,
            sync_s: acc[10] * k,
            pipeline_bubble_s: acc[BUBBLE] * k,
            idle_s: acc[IDLE] * k,
            total_tp_comm_s: totals[r][0] * k,
            total_dp_comm_s: totals[r][1] * k,
            total_pp_comm_s: totals[r][2] * k,
            total_ep_comm_s: totals[r][3] * k,
        });
    }
    result
}

/// Mean of per-rank breakdowns.
pub fn mean(per_rank: &[Breakdown]) -> Breakdown {
    let mut m = Breakdown::default();
    let k = 1.0 / per_rank.len().max(1) as f64;
    for b in per_rank {
        m.add_scaled(b, k);
    }
    m
}
