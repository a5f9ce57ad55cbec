//! Where time goes: each instant of a rank's measured window is attributed to exactly one
//! [`Category`], by priority: compute (by phase) first, then exposed communication (by
//! [`CommKind`], in its order), the wait for slower expert-parallel ranks, synchronisation,
//! else pipeline bubble (pp > 1) or idle. The categories therefore sum to the window length.
//!
//! Owns [`Category`] (the one table of breakdown categories: their JSON keys, labels and
//! priority, all derived from the phases and communication kinds) and [`Breakdown`].

use crate::units::SimTime;
use crate::workload::{CommKind, OpKind, Phase, Stream, Workload};
use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// An exclusive category of the time breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Compute of a phase.
    Compute(Phase),
    /// Communication of a kind not hidden behind compute.
    Comm(CommKind),
    /// Host-device copies and CPU optimizer work of offloading not hidden behind compute
    /// or communication.
    Offload,
    /// Waiting for the slowest expert-parallel rank after the experts (routing imbalance).
    MoeImbalance,
    /// Waiting for slower data-parallel replicas at a collective they share (every-replica
    /// mode, [`super::replicas`]: stragglers, slow nodes).
    StragglerWait,
    /// Cross-rank synchronisation (gradient-norm all-reduce).
    Sync,
    /// Idle while waiting on other pipeline stages.
    Bubble,
    /// Other idle time.
    Idle,
}

impl Category {
    /// Number of categories.
    pub const COUNT: usize = 17;

    /// Every category, in priority order (lower index wins when several are active).
    pub const ALL: [Category; Category::COUNT] = [
        Category::Compute(Phase::Forward),
        Category::Compute(Phase::Backward),
        Category::Compute(Phase::BackwardWeight),
        Category::Compute(Phase::Recompute),
        Category::Compute(Phase::Optimizer),
        Category::Comm(CommKind::Tp),
        Category::Comm(CommKind::Cp),
        Category::Comm(CommKind::DpGrad),
        Category::Comm(CommKind::DpParam),
        Category::Comm(CommKind::Pp),
        Category::Comm(CommKind::Ep),
        Category::Offload,
        Category::MoeImbalance,
        Category::StragglerWait,
        Category::Sync,
        Category::Bubble,
        Category::Idle,
    ];

    /// Dense index (priority order).
    pub fn index(self) -> usize {
        match self {
            Category::Compute(p) => match p {
                Phase::Forward => 0,
                Phase::Backward => 1,
                Phase::BackwardWeight => 2,
                Phase::Recompute => 3,
                Phase::Optimizer => 4,
            },
            Category::Comm(k) => 5 + k.index(),
            Category::Offload => 11,
            Category::MoeImbalance => 12,
            Category::StragglerWait => 13,
            Category::Sync => 14,
            Category::Bubble => 15,
            Category::Idle => 16,
        }
    }

    /// JSON key, with its unit: `forward_s`, `exposed_tp_comm_s`, `pipeline_bubble_s`, ...
    pub fn key(self) -> String {
        match self {
            Category::Compute(p) => format!("{}_s", p.name()),
            Category::Comm(k) => format!("exposed_{}_comm_s", k.name()),
            Category::Offload => "exposed_offload_s".into(),
            Category::MoeImbalance => "moe_imbalance_s".into(),
            Category::StragglerWait => "straggler_wait_s".into(),
            Category::Sync => "sync_s".into(),
            Category::Bubble => "pipeline_bubble_s".into(),
            Category::Idle => "idle_s".into(),
        }
    }

    /// Label of tables and legends: `forward`, `exposed TP comm`, `pipeline bubble`, ...
    pub fn label(self) -> String {
        match self {
            Category::Compute(Phase::BackwardWeight) => "backward (weight)".into(),
            Category::Compute(p) => p.name().into(),
            Category::Comm(k) => format!("exposed {}", k.label()),
            Category::Offload => "exposed offload".into(),
            Category::MoeImbalance => "MoE imbalance wait".into(),
            Category::StragglerWait => "straggler wait".into(),
            Category::Sync => "sync".into(),
            Category::Bubble => "pipeline bubble".into(),
            Category::Idle => "idle".into(),
        }
    }

    /// Whether this is GPU compute.
    pub fn is_compute(self) -> bool {
        matches!(self, Category::Compute(_))
    }
}

/// The dimensions communication totals are reported per (`total_{name}_comm_s`): each
/// [`CommKind`] counts towards its dimension's total.
const TOTAL_DIMS: [&str; 5] = ["tp", "cp", "dp", "pp", "ep"];

fn total_slot(k: CommKind) -> usize {
    TOTAL_DIMS.iter().position(|d| *d == k.dim().name()).unwrap_or(0)
}

/// Seconds per category for one rank over the measured iterations, divided by their count
/// (so the categories sum to the mean step time), and communication time per kind
/// including its hidden part.
///
/// In JSON it is one object: every category's [`Category::key`], then
/// `total_{tp,cp,dp,pp,ep}_comm_s`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breakdown {
    /// Seconds per exclusive category ([`Category::index`]).
    pub seconds: [f64; Category::COUNT],
    /// Communication seconds per kind ([`CommKind::index`]), hidden parts included.
    pub comm_total_s: [f64; CommKind::COUNT],
}

impl Breakdown {
    /// Seconds of `c`.
    pub fn get(&self, c: Category) -> f64 {
        self.seconds[c.index()]
    }

    /// Exposed seconds of communication kind `k`.
    pub fn exposed(&self, k: CommKind) -> f64 {
        self.get(Category::Comm(k))
    }

    /// Exposed communication of every kind, s.
    pub fn exposed_comm_s(&self) -> f64 {
        CommKind::ALL.iter().map(|&k| self.exposed(k)).sum()
    }

    /// Communication time of kind `k` including the hidden part, s.
    pub fn total_comm(&self, k: CommKind) -> f64 {
        self.comm_total_s[k.index()]
    }

    /// Communication time of the group of `dim` (e.g. "dp": gradients and parameters)
    /// including hidden parts, s.
    pub fn total_comm_of_dim(&self, dim: crate::parallel::Dim) -> f64 {
        CommKind::ALL
            .iter()
            .filter(|k| k.dim() == dim)
            .map(|&k| self.total_comm(k))
            .sum()
    }

    /// Sum of the exclusive categories (equals the window per iteration).
    pub fn exclusive_total_s(&self) -> f64 {
        self.seconds.iter().sum()
    }

    /// Compute time of every phase, s.
    pub fn compute_s(&self) -> f64 {
        Category::ALL
            .iter()
            .filter(|c| c.is_compute())
            .map(|&c| self.get(c))
            .sum()
    }

    /// Pipeline bubble, s.
    pub fn pipeline_bubble_s(&self) -> f64 {
        self.get(Category::Bubble)
    }

    /// (label, seconds) of the exclusive categories, for tables and charts.
    pub fn categories(&self) -> Vec<(String, f64)> {
        Category::ALL.iter().map(|&c| (c.label(), self.get(c))).collect()
    }

    fn add_scaled(&mut self, o: &Breakdown, k: f64) {
        for (x, y) in self.seconds.iter_mut().zip(o.seconds) {
            *x += k * y;
        }
        for (x, y) in self.comm_total_s.iter_mut().zip(o.comm_total_s) {
            *x += k * y;
        }
    }
}

impl Serialize for Breakdown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Category::COUNT + TOTAL_DIMS.len()))?;
        for c in Category::ALL {
            // offloading's and replicas' categories only where a run has them (results
            // stay as they were)
            if matches!(c, Category::Offload | Category::StragglerWait) && self.get(c) == 0.0 {
                continue;
            }
            m.serialize_entry(&c.key(), &self.get(c))?;
        }
        let mut totals = [0.0f64; TOTAL_DIMS.len()];
        for k in CommKind::ALL {
            totals[total_slot(k)] += self.total_comm(k);
        }
        for (d, t) in TOTAL_DIMS.iter().zip(totals) {
            m.serialize_entry(&format!("total_{d}_comm_s"), &t)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Breakdown {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Breakdown, D::Error> {
        let map = HashMap::<String, f64>::deserialize(d)?;
        let mut b = Breakdown::default();
        for c in Category::ALL {
            b.seconds[c.index()] = map.get(&c.key()).copied().unwrap_or(0.0);
        }
        for (slot, dim) in TOTAL_DIMS.iter().enumerate() {
            // a dimension's total is kept on its first kind
            if let Some(k) = CommKind::ALL.iter().find(|k| total_slot(**k) == slot) {
                b.comm_total_s[k.index()] = map.get(&format!("total_{dim}_comm_s")).copied().unwrap_or(0.0);
            }
        }
        Ok(b)
    }
}

/// The category of an op while it runs (`None`: zero-length compute markers).
fn category(kind: &OpKind) -> Option<Category> {
    match kind {
        OpKind::Compute { duration, phase, .. } => (duration.as_ps() != 0).then_some(Category::Compute(*phase)),
        OpKind::Barrier { .. } => Some(Category::Sync),
        OpKind::HostCopy { .. } => Some(Category::Offload),
        other => other.comm_kind().map(Category::Comm),
    }
}

/// Breakdown of every representative rank over `[from, to)`, per iteration in it, from
/// `op_times` (one replica's, indexed like `w.ops`) and `waits` (that replica's ops that
/// waited for other replicas: op index and arrival; the wait ends at the op's start).
pub fn per_rank(
    w: &Workload,
    op_times: &[(SimTime, SimTime)],
    waits: &[(u32, SimTime)],
    from: SimTime,
    to: SimTime,
    iterations: f64,
    pipeline: bool,
) -> Vec<Breakdown> {
    let n = w.stages as usize;
    // a mark is (time in ps) << 32 | (1 << 16 for a start, 0 for an end) | category: 16
    // bytes, sorted as (time, ends before starts, category)
    const START: u128 = 1 << 16;
    const CATEGORY: u128 = START - 1;
    let at_ps = |mark: u128| (mark >> 32) as u64;
    // kept per rank and stream (and one list for the MoE waits): a stream runs one op at
    // a time in program order, so each list is already sorted and sorting a rank's
    // concatenation merges a dozen runs
    const LISTS: usize = Stream::COUNT + 1;
    let mut marks: Vec<Vec<u128>> = vec![Vec::new(); n * LISTS];
    let mut totals = vec![[0.0f64; CommKind::COUNT]; n];
    let mut mark = |list: usize, s: SimTime, e: SimTime, cat: Category| -> Option<f64> {
        let s = s.max(from);
        let e = e.min(to);
        if e <= s {
            return None;
        }
        marks[list].push((s.as_ps() as u128) << 32 | START | cat.index() as u128);
        marks[list].push((e.as_ps() as u128) << 32 | cat.index() as u128);
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
        let (s, e) = op_times[i];
        if let OpKind::AllToAll { table } = op.kind {
            if let Some(prev) = w.all_to_alls[table as usize].wait_from {
                mark(
                    r * LISTS + Stream::COUNT,
                    op_times[prev as usize].1,
                    s,
                    Category::MoeImbalance,
                );
            }
        }
        let Some(d) = mark(r * LISTS + op.stream.index(), s, e, cat) else {
            continue;
        };
        if let Category::Comm(k) = cat {
            totals[r][k.index()] += d;
        }
    }
    for &(i, arrived) in waits {
        let op = &w.ops[i as usize];
        if (op.rank as usize) < n {
            let list = op.rank as usize * LISTS + Stream::COUNT;
            mark(list, arrived, op_times[i as usize].0, Category::StragglerWait);
        }
    }
    let idle = if pipeline { Category::Bubble } else { Category::Idle };
    let mut result = Vec::with_capacity(n);
    for r in 0..n {
        let lists = &mut marks[r * LISTS..(r + 1) * LISTS];
        let mut m: Vec<u128> = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for l in lists.iter_mut() {
            m.append(l);
            *l = Vec::new();
        }
        // stable and run-adaptive (equal marks are identical, so any sort gives this order)
        m.sort();
        let mut active = [0i32; Category::COUNT];
        let mut acc = [0.0f64; Category::COUNT];
        let mut t = from.as_ps();
        let mut i = 0;
        let end = to.as_ps();
        while t < end {
            while i < m.len() && at_ps(m[i]) <= t {
                let cat = (m[i] & CATEGORY) as usize;
                active[cat] += if m[i] & START != 0 { 1 } else { -1 };
                i += 1;
            }
            let next = if i < m.len() { at_ps(m[i]).min(end) } else { end };
            let dt = (next - t) as f64 / crate::units::PS_PER_S;
            let cat = active.iter().position(|&a| a > 0).unwrap_or(idle.index());
            acc[cat] += dt;
            t = next;
        }
        let k = 1.0 / iterations;
        result.push(Breakdown {
            seconds: acc.map(|x| x * k),
            comm_total_s: totals[r].map(|x| x * k),
        });
    }
    result
}

/// Breakdown of every pipeline stage: each replica's ([`per_rank`], on its workload of
/// `set`), averaged over the replicas (one in the representative mode).
pub fn per_stage(
    w: &Workload,
    set: &super::ReplicaSet,
    out: &super::SimOutput,
    window: (SimTime, SimTime),
    iterations: f64,
    pipeline: bool,
) -> Vec<Breakdown> {
    let replicas = out.replicas.max(1) as usize;
    let start = |r: usize| out.replica_ops.get(r).copied().unwrap_or(out.op_times.len() as u32);
    let mut waits: Vec<Vec<(u32, SimTime)>> = vec![Vec::new(); replicas];
    for &(id, at) in &out.replica_waits {
        let r = out.replica_ops.partition_point(|&s| s <= id).saturating_sub(1);
        waits[r].push((id - start(r), at));
    }
    let mut stages = vec![Breakdown::default(); w.stages as usize];
    for (r, waits) in waits.iter().enumerate() {
        let times = &out.op_times[start(r) as usize..start(r + 1) as usize];
        let wr = set.workload_of(r as u32, w);
        let ranks = per_rank(wr, times, waits, window.0, window.1, iterations, pipeline);
        for (stage, b) in stages.iter_mut().zip(&ranks) {
            stage.add_scaled(b, 1.0 / replicas as f64);
        }
    }
    stages
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_index_in_priority_order_with_distinct_keys() {
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let mut keys: Vec<String> = Category::ALL.iter().map(|c| c.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Category::COUNT);
        assert_eq!(Category::Comm(CommKind::DpGrad).key(), "exposed_dp_grad_comm_s");
        assert_eq!(Category::Comm(CommKind::Ep).label(), "exposed EP all-to-all");
    }

    #[test]
    fn json_round_trip_keeps_every_category_and_dimension_total() {
        let mut b = Breakdown::default();
        for (i, x) in b.seconds.iter_mut().enumerate() {
            *x = i as f64 + 0.5;
        }
        b.comm_total_s[CommKind::Tp.index()] = 3.0;
        b.comm_total_s[CommKind::DpGrad.index()] = 1.0;
        b.comm_total_s[CommKind::DpParam.index()] = 2.0;
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["total_dp_comm_s"], 3.0);
        assert_eq!(json["pipeline_bubble_s"], 15.5);
        let back: Breakdown = serde_json::from_value(json).unwrap();
        assert_eq!(back.seconds, b.seconds);
        assert_eq!(back.total_comm_of_dim(crate::parallel::Dim::Dp), 3.0);
    }
}
