//! Chrome trace export (`trace.json`): every simulated operation of the traced stages and
//! iterations, for chrome://tracing or <https://ui.perfetto.dev>.
//!
//! Format: the Chrome trace event JSON object form, `{"traceEvents": [...],
//! "displayTimeUnit": "ms", "otherData": {...}}`. One process per pipeline stage (`pid` =
//! stage, named "stage N"), one thread per stream (`tid` 0 compute, 1 TP, 2 PP, 3 DP, 4 DP param gather), one
//! complete event (`ph: "X"`) per operation with `ts` and `dur` in microseconds from the
//! start of the simulation. Written one event per line, deterministically.

use super::ReportError;
use crate::simulation::trace::{Trace, TraceSpan};
use crate::simulation::RunResult;
use crate::workload::Stream;
use serde::Serialize;
use std::path::Path;

/// Streams in `tid` order with their thread names.
pub const STREAMS: [(Stream, &str); 8] = [
    (Stream::Compute, "compute"),
    (Stream::Tp, "TP comm"),
    (Stream::Pp, "PP comm"),
    (Stream::Dp, "DP comm"),
    (Stream::DpGather, "DP param gather"),
    (Stream::Compute2, "compute (second queue)"),
    (Stream::Ep, "EP all-to-all"),
    (Stream::Ep2, "EP all-to-all (backward)"),
];

#[derive(Serialize)]
struct Meta<'a, A: Serialize> {
    name: &'a str,
    ph: &'static str,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    args: A,
}

#[derive(Serialize)]
struct NameArg<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct SortArg {
    sort_index: u32,
}

#[derive(Serialize)]
struct Complete<'a> {
    name: &'a str,
    cat: &'a str,
    /// Reserved trace-viewer colour of compute categories, so that forward, backward (B)
    /// and weight-gradient (W) passes read apart whatever their names.
    #[serde(skip_serializing_if = "Option::is_none")]
    cname: Option<&'static str>,
    ph: &'static str,
    ts: f64,
    dur: f64,
    pid: u32,
    tid: u32,
    args: OpArgs,
}

#[derive(Serialize)]
struct OpArgs {
    iteration: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    microbatch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flops: Option<f64>,
}

#[derive(Serialize)]
struct IterationData {
    iteration: u32,
    start_us: f64,
    end_us: f64,
    warmup: bool,
}

#[derive(Serialize)]
struct OtherData<'a> {
    scenario: &'a str,
    model: &'a str,
    gpu: &'a str,
    num_gpus: u32,
    plan: &'a str,
    step_time_s: f64,
    stages: &'a [u32],
    gpus_per_stage_process: u32,
    iterations: Vec<IterationData>,
}

/// Seconds to microseconds via whole picoseconds (the simulation clock), so that times print
/// without float noise and a span's `ts + dur` is its end.
fn us(s: f64) -> f64 {
    ps(s) / 1e6
}

fn ps(s: f64) -> f64 {
    (s * 1e12).round()
}

fn push_line(out: &mut Vec<u8>, first: &mut bool, v: &impl Serialize) {
    out.extend_from_slice(if *first { b"\n" } else { b",\n" });
    *first = false;
    serde_json::to_writer(&mut *out, v).expect("trace events serialise");
}

fn complete(s: &TraceSpan) -> Complete<'_> {
    Complete {
        name: &s.name,
        cat: &s.category,
        cname: match s.category.as_str() {
            "forward" => Some("thread_state_running"),
            "backward" => Some("rail_response"),
            "backward_weight" => Some("yellow"),
            "recompute" => Some("olive"),
            _ => None,
        },
        ph: "X",
        ts: us(s.start_s),
        dur: (ps(s.end_s) - ps(s.start_s)).max(0.0) / 1e6,
        pid: s.stage,
        tid: s.stream.index() as u32,
        args: OpArgs {
            iteration: s.iteration,
            microbatch: s.microbatch,
            bytes: s.bytes,
            flops: s.flops,
        },
    }
}

/// The Chrome trace JSON of `t`, a trace of the run `r`.
pub fn chrome_trace(r: &RunResult, t: &Trace) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024 + 200 * t.spans.len());
    out.extend_from_slice(b"{\"displayTimeUnit\":\"ms\",\"otherData\":");
    let other = OtherData {
        scenario: &r.name,
        model: &r.model,
        gpu: &r.gpu,
        num_gpus: r.num_gpus,
        plan: &r.plan,
        step_time_s: r.step_time_s,
        stages: &t.stages,
        gpus_per_stage_process: r.num_gpus / r.simulation.representative_ranks.max(1),
        iterations: t
            .iterations
            .iter()
            .map(|i| IterationData {
                iteration: i.iteration,
                start_us: us(i.start_s),
                end_us: us(i.end_s),
                warmup: i.warmup,
            })
            .collect(),
    };
    serde_json::to_writer(&mut out, &other).expect("trace metadata serialises");
    out.extend_from_slice(b",\"traceEvents\":[");
    let mut first = true;
    for &stage in &t.stages {
        let name = format!("stage {stage}");
        push_line(
            &mut out,
            &mut first,
            &Meta {
                name: "process_name",
                ph: "M",
                pid: stage,
                tid: None,
                args: NameArg { name: &name },
            },
        );
        push_line(
            &mut out,
            &mut first,
            &Meta {
                name: "process_sort_index",
                ph: "M",
                pid: stage,
                tid: None,
                args: SortArg { sort_index: stage },
            },
        );
        for (stream, thread) in STREAMS {
            let tid = Some(stream.index() as u32);
            push_line(
                &mut out,
                &mut first,
                &Meta {
                    name: "thread_name",
                    ph: "M",
                    pid: stage,
                    tid,
                    args: NameArg { name: thread },
                },
            );
            push_line(
                &mut out,
                &mut first,
                &Meta {
                    name: "thread_sort_index",
                    ph: "M",
                    pid: stage,
                    tid,
                    args: SortArg {
                        sort_index: stream.index() as u32,
                    },
                },
            );
        }
    }
    for s in &t.spans {
        push_line(&mut out, &mut first, &complete(s));
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

/// Writes [`chrome_trace`] to `path` atomically.
pub fn write_trace(r: &RunResult, t: &Trace, path: &Path) -> Result<(), ReportError> {
    super::write_atomic(path, &chrome_trace(r, t))
}
