//! Full per-operation spans of chosen stages and iterations, for trace export.
//!
//! [`RunResult::timeline`](super::RunResult::timeline) keeps the last iteration only and
//! coarsens big runs; a trace wants every operation with its bytes and FLOPs. The spans are
//! read off the same simulation as the result ([`run_traced`](super::run::run_traced)), so
//! nothing is simulated twice.

use super::SimOutput;
use crate::workload::{OpKind, Stream, Workload};
use serde::{Deserialize, Serialize};

/// Which part of a run to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRequest {
    /// Pipeline stages to export (see [`default_trace_stages`]).
    pub stages: Vec<u32>,
    /// Iterations to export, warm-up included in the numbering; `None`: the last one.
    pub iterations: Option<Vec<u32>>,
}

impl TraceRequest {
    /// The default request for a run with `pp` stages: [`default_trace_stages`], last iteration.
    pub fn default_for(pp: u32) -> Self {
        TraceRequest {
            stages: default_trace_stages(pp),
            iterations: None,
        }
    }
}

/// Stages traced by default: all when `pp <= 8`, else the first, the middle and the last.
pub fn default_trace_stages(pp: u32) -> Vec<u32> {
    if pp <= 8 {
        (0..pp).collect()
    } else {
        vec![0, pp / 2, pp - 1]
    }
}

/// One simulated operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSpan {
    /// Pipeline stage (representative rank).
    pub stage: u32,
    /// Stream it ran on.
    pub stream: Stream,
    /// Op label (as in the timeline).
    pub name: String,
    /// Category: forward, backward, recompute, optimizer, tp_comm, dp_comm, pp_comm, sync.
    pub category: String,
    /// Micro-batch, if any.
    pub microbatch: Option<u32>,
    /// Training iteration (0-based, warm-up included).
    pub iteration: u32,
    /// Start, s from the start of the simulation.
    pub start_s: f64,
    /// End, s from the start of the simulation.
    pub end_s: f64,
    /// Bytes moved: collective buffer size or point-to-point message (communication only).
    pub bytes: Option<f64>,
    /// FLOPs executed (compute only; 0 for memory-bound kernels).
    pub flops: Option<f64>,
}

/// Bounds of one traced iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceIteration {
    /// Iteration (0-based, warm-up included).
    pub iteration: u32,
    /// Start: end of the previous iteration (0 for the first), s from the simulation start.
    pub start_s: f64,
    /// End: the last optimizer step of the iteration, on any stage, s.
    pub end_s: f64,
    /// Whether it is a warm-up iteration (left out of the statistics).
    pub warmup: bool,
}

/// The spans of a traced run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Stages exported, ascending.
    pub stages: Vec<u32>,
    /// Iterations exported, ascending.
    pub iterations: Vec<TraceIteration>,
    /// Every operation of those stages and iterations, zero-length ones included, in
    /// operation order (program order on each stream).
    pub spans: Vec<TraceSpan>,
}

/// Category of an operation, shared by the timeline and the trace
/// ([`OpKind::trace_category`]).
pub fn category(kind: &OpKind) -> String {
    kind.trace_category().into()
}

/// Collects the spans `req` asks for, of `w` whose ops ran at `times` (one replica's).
/// Stages or iterations that do not exist are ignored.
pub(crate) fn collect(
    w: &Workload,
    times: &[(crate::units::SimTime, crate::units::SimTime)],
    out: &SimOutput,
    warmup: u32,
    req: &TraceRequest,
) -> Trace {
    let mut stages: Vec<u32> = req.stages.iter().copied().filter(|&s| s < w.stages).collect();
    stages.sort_unstable();
    stages.dedup();
    let last = w.iterations.saturating_sub(1);
    let mut its: Vec<u32> = match &req.iterations {
        Some(v) => v.iter().copied().filter(|&i| i < w.iterations).collect(),
        None => vec![last],
    };
    its.sort_unstable();
    its.dedup();
    let ends = &out.iteration_ends;
    let iterations = its
        .iter()
        .map(|&i| TraceIteration {
            iteration: i,
            start_s: if i == 0 { 0.0 } else { ends[i as usize - 1].as_secs() },
            end_s: ends[i as usize].as_secs(),
            warmup: i < warmup,
        })
        .collect();
    let mut spans = Vec::new();
    for (op, &(s, e)) in w.ops.iter().zip(times) {
        if stages.binary_search(&op.rank).is_err() || its.binary_search(&op.iteration).is_err() {
            continue;
        }
        let (bytes, flops) = match &op.kind {
            OpKind::Compute { flops, .. } => (None, Some(*flops)),
            OpKind::Collective { bytes, .. } | OpKind::Send { bytes, .. } => (Some(*bytes), None),
            OpKind::Barrier { .. } => (None, None),
            OpKind::HostCopy { bytes, .. } => ((*bytes > 0.0).then_some(*bytes), None),
            OpKind::AllToAll { table } => {
                let a = &w.all_to_alls[*table as usize];
                (Some(a.sent_bytes()), None)
            }
        };
        spans.push(TraceSpan {
            stage: op.rank,
            stream: op.stream,
            name: w.name(op).to_string(),
            category: category(&op.kind),
            microbatch: (op.microbatch != u32::MAX).then_some(op.microbatch),
            iteration: op.iteration,
            start_s: s.as_secs(),
            end_s: e.max(s).as_secs(),
            bytes,
            flops,
        });
    }
    Trace {
        stages,
        iterations,
        spans,
    }
}
