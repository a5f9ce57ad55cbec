//! The timeline of a run's last iteration: the spans of at most [`MAX_TIMELINE_STAGES`]
//! stages (in every-replica mode, of the replica that computed the longest in it: the one
//! the others wait for, [`busiest_replica`]), coarse for large runs.

use crate::units::SimTime;
use crate::workload::{self, CommKind, Stream};
use serde::{Deserialize, Serialize};

/// A span of the timeline (last simulated iteration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineSpan {
    /// Pipeline stage (representative rank).
    pub stage: u32,
    /// Stream.
    pub stream: Stream,
    /// Category: forward, backward, recompute, optimizer, tp_comm, dp_comm, pp_comm, sync.
    pub category: String,
    /// Op label.
    pub name: String,
    /// Micro-batch, if any.
    pub microbatch: Option<u32>,
    /// Start, s from the iteration start.
    pub start_s: f64,
    /// End, s from the iteration start.
    pub end_s: f64,
}

/// Stages kept in the timeline at most.
pub const MAX_TIMELINE_STAGES: u32 = 8;
/// Above this many operations per stage and iteration, the timeline keeps one span per pass.
pub const MAX_SPANS_PER_STAGE: usize = 3000;
/// In such a timeline, TP collectives of one pass closer than the iteration over this merge.
pub const TP_MERGE_PARTS: f64 = 2000.0;

/// The replica (of those `out` simulated, each running its workload of `set`) whose
/// pipeline stages computed the longest between `t0` and `t1`: a straggler's, or one on
/// the slower GPUs, which the others wait for. The first of equals (replica 0 when they are
/// alike).
pub(super) fn busiest_replica(
    w: &workload::Workload,
    set: &super::ReplicaSet,
    out: &super::SimOutput,
    (t0, t1): (SimTime, SimTime),
) -> u32 {
    let busy = |r: u32| -> u64 {
        let wr = set.workload_of(r, w);
        let times = &out.op_times[out.replica_ops[r as usize] as usize..];
        (wr.ops.iter().zip(times))
            .filter(|(op, &(s, e))| op.rank < wr.stages && op.stream.is_compute() && s >= t0 && e <= t1)
            .map(|(_, &(s, e))| (e - s).as_ps())
            .sum()
    };
    let mut best = (0, 0);
    for r in 0..out.replicas.max(1) {
        let b = busy(r);
        if b > best.1 {
            best = (r, b);
        }
    }
    best.0
}

/// The spans of the last iteration (from `t0` to `t1`) of `w`, whose ops ran at `times`,
/// for at most [`MAX_TIMELINE_STAGES`] stages; coarse (one span per pass and stream) for
/// large runs.
pub(super) fn timeline(
    w: &workload::Workload,
    times: &[(SimTime, SimTime)],
    t0: SimTime,
    t1: SimTime,
) -> Vec<TimelineSpan> {
    let last = w.iterations - 1;
    // coarse timelines: the TP stream's collectives of one pass merge across compute gaps
    // shorter than this (under a pixel of the timeline chart), so the stream stays visible
    let tp_gap_s = (t1 - t0).as_secs() / TP_MERGE_PARTS;
    let stages = timeline_stages(w.stages);
    let mut per_stage_ops = vec![0usize; w.stages as usize];
    for op in w.ops.iter().filter(|op| op.iteration == last && op.rank < w.stages) {
        per_stage_ops[op.rank as usize] += 1;
    }
    let mut timeline = Vec::new();
    for (i, op) in w.ops.iter().enumerate() {
        if op.iteration != last || !stages.contains(&op.rank) {
            continue;
        }
        let (s, e) = times[i];
        if e <= s {
            continue;
        }
        let category = super::trace::category(&op.kind);
        let span = TimelineSpan {
            stage: op.rank,
            stream: op.stream,
            category,
            name: w.name(op).to_string(),
            microbatch: (op.microbatch != u32::MAX).then_some(op.microbatch),
            start_s: s.saturating_sub(t0).as_secs(),
            end_s: e.saturating_sub(t0).as_secs(),
        };
        // large runs: one span per pass and stream (on the TP stream, one per run of
        // collectives closer than `tp_gap_s`)
        let coarse = per_stage_ops[op.rank as usize] > MAX_SPANS_PER_STAGE;
        if coarse {
            let gap_s = if op.stream == Stream::Tp { tp_gap_s } else { 1e-9 };
            if let Some(prev) = timeline
                .iter_mut()
                .rev()
                .find(|t: &&mut TimelineSpan| t.stage == span.stage && t.stream == span.stream)
            {
                let same_pass = prev.microbatch == span.microbatch
                    && (prev.category == span.category || span.category == CommKind::Tp.trace_name());
                if same_pass && span.start_s - prev.end_s < gap_s {
                    prev.end_s = span.end_s;
                    continue;
                }
            }
        }
        timeline.push(span);
    }
    timeline
}

/// Stages shown in the timeline: all when few, else evenly spaced with first and last.
pub fn timeline_stages(pp: u32) -> Vec<u32> {
    if pp <= MAX_TIMELINE_STAGES {
        return (0..pp).collect();
    }
    let k = MAX_TIMELINE_STAGES;
    (0..k)
        .map(|i| (i as u64 * (pp as u64 - 1) / (k as u64 - 1)) as u32)
        .collect()
}
